/**
 * One scheduled task: its record, its handle and its context at once, and the small integer
 * codes the scheduler keeps in it.
 * @internal
 */
import type { TaskContext, TaskHandle, TaskState, Task } from './types.js';

/** Task states, as small integers (the public names are in {@link STATE_NAMES}). */
export const QUEUED = 0;
export const RUNNING = 1;
export const SUCCEEDED = 2;
export const FAILED = 3;
export const CANCELLED = 4;
export const TIMED_OUT = 5;
export const STATE_NAMES: readonly TaskState[] = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'timed_out',
];

/** Where a queued record waits. */
export const IN_QUEUE = 0;
/** Its key is at keyConcurrency. */
export const PARKED = 1;
/** Waiting for the rate limiter. */
export const ADMITTING = 2;
/** The rate limiter passed; waiting for a slot. */
export const READY = 3;
/** Taken out of every queue. */
export const REMOVED = 4;

/** Per-task fields most tasks never need, allocated on first use. */
export interface Extras {
  id?: string;
  outcome?: unknown;
  controller?: AbortController;
  abortReason?: unknown;
  timer?: ReturnType<typeof setTimeout>;
  disposeSignal?: () => void;
  /** The task settles by itself when its signal aborts: watched only while it waits. */
  settlesOnAbort?: boolean;
  admission?: AbortController;
  timeoutMs?: number;
  cost?: number;
  key?: string;
}

/** What a record needs of its scheduler: cancelling it. */
export interface RecordOwner {
  _cancel(record: TaskRecord<unknown>, reason: unknown): boolean;
}

/**
 * One task: its record, its handle and its context at once. Kept small because a queue may
 * hold many: priority and place share one small integer, one time field holds the enqueue
 * time and then the start time, and only the resolve function of the result is kept (a
 * rejection resolves with a rejected promise).
 */
export class TaskRecord<T> implements TaskHandle<T>, TaskContext {
  status = QUEUED;
  /** priority (2 bits) | place << 2 */
  priorityAndPlace: number;
  /** performance.now() at enqueue, then at start */
  timestamp: number;
  promise: Promise<T> | null = null;
  resolveFn: ((value: T | PromiseLike<T>) => void) | null = null;
  extras: Extras | null = null;

  constructor(
    readonly owner: RecordOwner,
    readonly fn: Task<T>,
    priority: number,
    readonly sequence: number,
    timestamp: number,
  ) {
    this.priorityAndPlace = priority;
    this.timestamp = timestamp;
  }

  /** The priority level, 0 (low) to 3 (critical). */
  get priority(): number {
    return this.priorityAndPlace & 3;
  }

  get key(): string | undefined {
    return this.extras?.key;
  }

  /** Where a queued record waits (IN_QUEUE, PARKED, ADMITTING, READY or REMOVED). */
  get place(): number {
    return this.priorityAndPlace >> 2;
  }

  set place(place: number) {
    this.priorityAndPlace = (this.priorityAndPlace & 3) | (place << 2);
  }

  /** The extras, allocated on first use. */
  ensureExtras(): Extras {
    return (this.extras ??= {});
  }

  get id(): string {
    return this.extras?.id ?? (this.ensureExtras().id = `task-${this.sequence}`);
  }

  get state(): TaskState {
    return STATE_NAMES[this.status]!;
  }

  get signal(): AbortSignal {
    const extras = this.ensureExtras();
    if (!extras.controller) {
      extras.controller = new AbortController();
      if (extras.abortReason !== undefined) extras.controller.abort(extras.abortReason);
    }
    return extras.controller.signal;
  }

  get result(): Promise<T> {
    if (!this.promise) {
      if (this.status === QUEUED || this.status === RUNNING) {
        this.promise = new Promise<T>((resolve) => {
          this.resolveFn = resolve;
        });
      } else {
        const outcome = this.extras?.outcome;
        if (this.extras) this.extras.outcome = undefined;
        this.promise =
          this.status === SUCCEEDED ? Promise.resolve(outcome as T) : Promise.reject(outcome);
      }
    }
    return this.promise;
  }

  cancel(reason?: unknown): boolean {
    return this.owner._cancel(this as TaskRecord<unknown>, reason);
  }

  /** Settles the result (creating no promise when nobody asked for one). */
  settle(ok: boolean, value: unknown): void {
    if (this.resolveFn) {
      this.resolveFn(ok ? (value as T) : Promise.reject(value));
      this.resolveFn = null;
    } else if (value !== undefined) {
      this.ensureExtras().outcome = value;
    }
  }

  abort(reason: unknown): void {
    const extras = this.ensureExtras();
    if (extras.controller) extras.controller.abort(reason);
    else extras.abortReason = reason;
  }

  clearTimer(): void {
    const extras = this.extras;
    if (extras?.timer) {
      clearTimeout(extras.timer);
      extras.timer = undefined;
    }
  }

  disposeSignal(): void {
    const extras = this.extras;
    if (extras?.disposeSignal) {
      extras.disposeSignal();
      extras.disposeSignal = undefined;
    }
  }
}
