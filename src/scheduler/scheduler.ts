/**
 * The priority task scheduler.
 *
 * Hot path: one record per task (it is also the handle and the task's context); one ring-buffer
 * FIFO per priority; the result promise and the AbortController are made only when someone asks
 * for them; no timer unless a timeout is set. Starting work happens in one re-entrancy-guarded
 * loop, so thousands of synchronous tasks settling in a row never recurse.
 */
import {
  ConfigError,
  QueueFullError,
  SchedulerClosedError,
  TaskCancelledError,
  TaskTimeoutError,
} from '../errors.js';
import { Deque } from '../internal/deque.js';
import { Emitter } from '../internal/emitter.js';
import { MAX_TIMER_DELAY_MS, unrefTimeout } from '../internal/clock.js';
import {
  describeValue,
  invalid,
  optionalBoolean,
  optionalNumber,
  optionalString,
  readOptions,
} from '../internal/validate.js';
import { MetricName } from '../observe/metric-names.js';
import { readMetrics, type Metrics } from '../observe/metrics.js';
import {
  PRIORITIES,
  type Priority,
  type SchedulerEvents,
  type SchedulerOptions,
  type SchedulerRateLimiter,
  type SchedulerStats,
  type SubmitOptions,
  type Task,
  type TaskContext,
  type TaskHandle,
  type TaskState,
} from './types.js';

const QUEUED = 0;
const RUNNING = 1;
const SUCCEEDED = 2;
const FAILED = 3;
const CANCELLED = 4;
const TIMED_OUT = 5;
const STATE_NAMES: readonly TaskState[] = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'timed_out',
];

/** Where a queued record waits. */
const IN_QUEUE = 0;
const PARKED = 1; // its key is at keyConcurrency
const ADMITTING = 2; // waiting for the rate limiter
const READY = 3; // rate limiter passed, waiting for a slot
const REMOVED = 4; // taken out of every queue

const PRIORITY_INDEX: Readonly<Record<string, number>> = Object.freeze({
  low: 0,
  normal: 1,
  high: 2,
  critical: 3,
});
const SUBMIT_KEYS = ['priority', 'key', 'signal', 'timeoutMs', 'id', 'cost'];

/** Per-task fields most tasks never need, allocated on first use. */
interface Extras {
  id?: string;
  outcome?: unknown;
  controller?: AbortController;
  abortReason?: unknown;
  timer?: ReturnType<typeof setTimeout>;
  disposeSignal?: () => void;
  admission?: AbortController;
  timeoutMs?: number;
  cost?: number;
  key?: string;
}

/**
 * One task: its record, its handle and its context at once. Kept small because a queue may
 * hold many: priority and location share one small integer, one time field holds the enqueue
 * time and then the start time, and only the resolve function of the result is kept (a
 * rejection resolves with a rejected promise).
 */
class TaskRecord<T> implements TaskHandle<T>, TaskContext {
  st = QUEUED;
  /** priority (2 bits) | location << 2 */
  pw: number;
  /** performance.now() at enqueue, then at start */
  at: number;
  promise: Promise<T> | null = null;
  resolveFn: ((value: T | PromiseLike<T>) => void) | null = null;
  ext: Extras | null = null;

  constructor(
    readonly sched: TaskScheduler,
    readonly fn: Task<T>,
    prio: number,
    readonly seq: number,
    at: number,
  ) {
    this.pw = prio;
    this.at = at;
  }

  get prio(): number {
    return this.pw & 3;
  }

  get key(): string | undefined {
    return this.ext?.key;
  }

  get where(): number {
    return this.pw >> 2;
  }

  set where(where: number) {
    this.pw = (this.pw & 3) | (where << 2);
  }

  get x(): Extras {
    return (this.ext ??= {});
  }

  get id(): string {
    return this.ext?.id ?? (this.x.id = `task-${this.seq}`);
  }

  get state(): TaskState {
    return STATE_NAMES[this.st]!;
  }

  get signal(): AbortSignal {
    const x = this.x;
    if (!x.controller) {
      x.controller = new AbortController();
      if (x.abortReason !== undefined) x.controller.abort(x.abortReason);
    }
    return x.controller.signal;
  }

  get result(): Promise<T> {
    if (!this.promise) {
      if (this.st === QUEUED || this.st === RUNNING) {
        this.promise = new Promise<T>((resolve) => {
          this.resolveFn = resolve;
        });
      } else {
        const outcome = this.ext?.outcome;
        if (this.ext) this.ext.outcome = undefined;
        this.promise =
          this.st === SUCCEEDED ? Promise.resolve(outcome as T) : Promise.reject(outcome);
      }
    }
    return this.promise;
  }

  cancel(reason?: unknown): boolean {
    return this.sched._cancel(this as TaskRecord<unknown>, reason);
  }

  /** Settles the result (creating no promise when nobody asked for one). */
  settle(ok: boolean, value: unknown): void {
    if (this.resolveFn) {
      this.resolveFn(ok ? (value as T) : Promise.reject(value));
      this.resolveFn = null;
    } else if (value !== undefined) {
      this.x.outcome = value;
    }
  }

  abort(reason: unknown): void {
    const x = this.x;
    if (x.controller) x.controller.abort(reason);
    else x.abortReason = reason;
  }

  clearTimer(): void {
    const x = this.ext;
    if (x?.timer) {
      clearTimeout(x.timer);
      x.timer = undefined;
    }
  }

  disposeSignal(): void {
    const x = this.ext;
    if (x?.disposeSignal) {
      x.disposeSignal();
      x.disposeSignal = undefined;
    }
  }
}

/**
 * A promise scheduler with priorities, a concurrency bound that never sticks, a bounded queue,
 * cancellation, timeouts, per-key caps, an optional rate limiter and exact stats.
 *
 * @example
 * ```ts
 * const scheduler = createScheduler({ maxConcurrent: 4 });
 * const page = await scheduler.run(({ signal }) => fetch(url, { signal }), { priority: 'high' });
 * ```
 */
export class TaskScheduler {
  readonly #max: number;
  readonly #capacity: number;
  readonly #defaultTimeoutMs: number;
  readonly #agingMs: number;
  readonly #keyCap: number;
  readonly #limiter: SchedulerRateLimiter | undefined;
  readonly #queues: Deque<TaskRecord<unknown>>[] = [
    new Deque(),
    new Deque(),
    new Deque(),
    new Deque(),
  ];
  readonly #ready = new Deque<TaskRecord<unknown>>();
  readonly #parked = new Map<string, Deque<TaskRecord<unknown>>>();
  readonly #keyActive = new Map<string, number>();
  readonly #keyAdmitting = new Map<string, number>();
  readonly #active = new Set<TaskRecord<unknown>>();
  readonly #admitting = new Set<TaskRecord<unknown>>();
  readonly #signalWatchers = new WeakMap<
    AbortSignal,
    { set: Set<TaskRecord<unknown>>; onAbort: () => void }
  >();
  #busy = false;
  readonly #emitter: Emitter<SchedulerEvents>;
  readonly #queuedBy = [0, 0, 0, 0];
  #queued = 0;
  #dead = 0;
  #slots = 0;
  #running = 0;
  #seq = 0;
  #paused: boolean;
  #closed = false;
  #pumping = false;
  #repump = false;
  #idleWaiters: (() => void)[] = [];
  #emptyWaiters: (() => void)[] = [];
  #submitted = 0;
  #started = 0;
  #succeeded = 0;
  #failed = 0;
  #cancelled = 0;
  #timedOut = 0;
  #rejected = 0;
  readonly #metrics: Metrics | undefined;
  readonly #labels: { scheduler: string };
  #totalWaitMs = 0;
  #maxWaitMs = 0;
  #totalRunMs = 0;
  #maxRunMs = 0;

  /** @throws {@link ConfigError} on invalid options. Prefer {@link createScheduler}. */
  constructor(options: SchedulerOptions = {}) {
    const w = 'createScheduler';
    const o = readOptions(w, options, [
      'maxConcurrent',
      'queueCapacity',
      'defaultTimeoutMs',
      'agingMs',
      'keyConcurrency',
      'rateLimiter',
      'paused',
      'metrics',
      'name',
    ]);
    this.#metrics = readMetrics(w, o.metrics);
    this.#labels = { scheduler: optionalString(w, 'name', o.name, 'scheduler') };
    this.#max = optionalNumber(w, 'maxConcurrent', o.maxConcurrent, 10, { integer: true, min: 1 });
    this.#capacity = optionalNumber(w, 'queueCapacity', o.queueCapacity, 1000, {
      integer: true,
      min: 0,
      allowInfinity: true,
    });
    this.#defaultTimeoutMs = optionalNumber(w, 'defaultTimeoutMs', o.defaultTimeoutMs, 0, {
      integer: true,
      min: 1,
      max: MAX_TIMER_DELAY_MS,
    });
    this.#agingMs = optionalNumber(w, 'agingMs', o.agingMs, 0, { integer: true, min: 1 });
    this.#keyCap = optionalNumber(w, 'keyConcurrency', o.keyConcurrency, 0, {
      integer: true,
      min: 1,
    });
    if (o.rateLimiter !== undefined) {
      const l = o.rateLimiter as SchedulerRateLimiter | null;
      if (l === null || typeof l !== 'object' || typeof l.acquire !== 'function') {
        invalid(w, 'rateLimiter', 'an object with an acquire(key, options) method', l);
      }
      this.#limiter = l;
    }
    this.#paused = optionalBoolean(w, 'paused', o.paused, false);
    this.#emitter = new Emitter<SchedulerEvents>((error) => {
      if (this.#emitter.has('error')) this.#emitter.emit('error', error);
    });
  }

  /**
   * Submits a task. Never throws for a full queue or a closed scheduler: the handle's `result`
   * rejects with {@link QueueFullError} or {@link SchedulerClosedError} instead.
   *
   * @throws {@link ConfigError} when `task` is not a function or an option is invalid.
   */
  submit<T>(task: Task<T>, options?: SubmitOptions): TaskHandle<T> {
    if (typeof task !== 'function') {
      throw new ConfigError(
        `submit: expected \`task\` to be a function, got ${describeValue(task)}`,
        {
          context: { field: 'task' },
        },
      );
    }
    let prio = 1;
    let key: string | undefined;
    let timeoutMs = this.#defaultTimeoutMs;
    let id: string | undefined;
    let signal: AbortSignal | undefined;
    let cost = 1;
    if (options !== undefined) {
      if (options === null || typeof options !== 'object')
        invalid('submit', 'options', 'an object', options);
      for (const name in options) {
        if (!SUBMIT_KEYS.includes(name)) {
          throw new ConfigError(
            `submit: unknown option \`${name}\`; known options are ${SUBMIT_KEYS.join(', ')}`,
            {
              context: { field: name },
            },
          );
        }
      }
      if (options.priority !== undefined) {
        const p = PRIORITY_INDEX[options.priority as string];
        if (p === undefined || typeof options.priority !== 'string') {
          invalid(
            'submit',
            'priority',
            `one of ${PRIORITIES.map((x) => `'${x}'`).join(', ')}`,
            options.priority,
          );
        }
        prio = p;
      }
      if (options.key !== undefined) {
        if (typeof options.key !== 'string') invalid('submit', 'key', 'a string', options.key);
        key = options.key;
      }
      if (options.timeoutMs !== undefined) {
        timeoutMs = optionalNumber('submit', 'timeoutMs', options.timeoutMs, 0, {
          integer: true,
          min: 1,
          max: MAX_TIMER_DELAY_MS,
        });
      }
      if (options.id !== undefined) {
        if (typeof options.id !== 'string' || options.id.length === 0)
          invalid('submit', 'id', 'a non-empty string', options.id);
        id = options.id;
      }
      if (options.cost !== undefined)
        cost = optionalNumber('submit', 'cost', options.cost, 1, { min: 0 });
      if (options.signal !== undefined) {
        const s = options.signal;
        if (s === null || typeof s !== 'object' || typeof s.addEventListener !== 'function') {
          invalid('submit', 'signal', 'an AbortSignal', s);
        }
        signal = s;
      }
    }
    this.#submitted++;
    const rec = new TaskRecord<T>(this, task, prio, ++this.#seq, performance.now());
    if (key !== undefined) rec.x.key = key;
    if (id !== undefined) rec.x.id = id;
    if (timeoutMs !== this.#defaultTimeoutMs) rec.x.timeoutMs = timeoutMs;
    if (cost !== 1) rec.x.cost = cost;
    if (this.#closed) {
      rec.st = FAILED; // refused: counted as rejected, never run
      this.#rejected++;
      rec.settle(
        false,
        new SchedulerClosedError('scheduler is shut down; submit refused', {
          context: { taskId: rec.id },
        }),
      );
      return rec;
    }
    if (signal?.aborted) {
      rec.st = CANCELLED;
      this.#cancelled++;
      rec.settle(
        false,
        new TaskCancelledError('task was cancelled before it was queued', {
          cause: signal.reason,
          context: { taskId: rec.id },
        }),
      );
      return rec;
    }
    const generic = rec as TaskRecord<unknown>;
    // fast path: start now when nothing waits and a slot is free
    if (
      this.#queued === 0 &&
      !this.#paused &&
      this.#slots < this.#max &&
      this.#limiter === undefined &&
      (this.#keyCap === 0 || key === undefined || (this.#keyActive.get(key) ?? 0) < this.#keyCap)
    ) {
      if (signal) this.#watchSignal(generic, signal);
      if (this.#keyCap !== 0 && key !== undefined)
        this.#keyActive.set(key, (this.#keyActive.get(key) ?? 0) + 1);
      this.#start(generic);
      return rec;
    }
    if (this.#queued >= this.#capacity) {
      rec.st = FAILED; // refused: counted as rejected, never run
      this.#rejected++;
      rec.settle(
        false,
        new QueueFullError(`queue is full (queueCapacity ${this.#capacity})`, {
          context: { taskId: rec.id, key },
        }),
      );
      return rec;
    }
    if (signal) this.#watchSignal(generic, signal);
    this.#queued++;
    this.#queuedBy[prio]!++;
    this.#queues[prio]!.push(generic);
    if (this.#metrics)
      this.#metrics.gauge(MetricName.SCHEDULER_QUEUE_DEPTH, this.#queued, this.#labels);
    this.#pump();
    return rec;
  }

  /** Submits a task and returns its result promise. */
  run<T>(task: Task<T>, options?: SubmitOptions): Promise<T> {
    return this.submit(task, options).result;
  }

  /**
   * Submits every task and resolves with one settled result per input, in order. An input that
   * is not a function gets a rejected entry (ConfigError); nothing is swallowed.
   */
  async submitMany<T>(
    tasks: Task<T>[],
    options?: SubmitOptions,
  ): Promise<PromiseSettledResult<T>[]> {
    if (!Array.isArray(tasks)) invalid('submitMany', 'tasks', 'an array of functions', tasks);
    const results = tasks.map((task) => {
      try {
        return this.submit(task, options).result;
      } catch (error) {
        return Promise.reject(error);
      }
    });
    return Promise.allSettled(results);
  }

  /** Stops starting tasks (running ones go on). */
  pause(): void {
    this.#paused = true;
  }

  /** Starts tasks again. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#pump();
  }

  /** Whether the scheduler is paused. */
  get isPaused(): boolean {
    return this.#paused;
  }

  /** Resolves when nothing is queued and every slot is free. */
  onIdle(): Promise<void> {
    if (this.#queued === 0 && this.#slots === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Resolves when nothing is queued (tasks may still run). */
  onEmpty(): Promise<void> {
    if (this.#queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.#emptyWaiters.push(resolve));
  }

  /**
   * Refuses new submits (SchedulerClosedError). `drain` (default) runs what is queued; `cancel`
   * cancels queued and running tasks. Resolves when every slot is free.
   */
  async shutdown(options: { mode?: 'drain' | 'cancel' } = {}): Promise<void> {
    const o = readOptions('shutdown', options, ['mode']);
    const mode = o.mode ?? 'drain';
    if (mode !== 'drain' && mode !== 'cancel')
      invalid('shutdown', 'mode', "'drain' or 'cancel'", mode);
    this.#closed = true;
    if (mode === 'cancel') {
      const reason = new SchedulerClosedError('scheduler shut down in cancel mode');
      const waiting: TaskRecord<unknown>[] = [];
      for (const q of [...this.#queues, this.#ready, ...this.#parked.values()]) {
        q.filterInPlace((r) => {
          if (r.st === QUEUED) waiting.push(r);
          return false;
        });
      }
      this.#dead = 0;
      for (const r of waiting) {
        r.where = REMOVED;
        this._cancel(r, reason);
      }
      for (const r of [...this.#admitting]) this._cancel(r, reason);
      for (const r of [...this.#active]) this._cancel(r, reason);
    } else if (this.#paused) {
      this.resume();
    }
    await this.onIdle();
  }

  /** Counters and gauges; `submitted = rejected + queued + running + settled` always holds. */
  stats(): SchedulerStats {
    return {
      queued: this.#queued,
      queuedByPriority: {
        low: this.#queuedBy[0]!,
        normal: this.#queuedBy[1]!,
        high: this.#queuedBy[2]!,
        critical: this.#queuedBy[3]!,
      },
      running: this.#running,
      submitted: this.#submitted,
      started: this.#started,
      succeeded: this.#succeeded,
      failed: this.#failed,
      cancelled: this.#cancelled,
      timedOut: this.#timedOut,
      rejected: this.#rejected,
      activeSlots: this.#slots,
      totalWaitMs: this.#totalWaitMs,
      maxWaitMs: this.#maxWaitMs,
      totalRunMs: this.#totalRunMs,
      maxRunMs: this.#maxRunMs,
    };
  }

  /**
   * Subscribes to an event; returns an unsubscribe function. Listener errors are isolated and
   * re-emitted as `error`.
   */
  on<K extends keyof SchedulerEvents>(
    event: K,
    listener: (payload: SchedulerEvents[K]) => void,
  ): () => void {
    return this.#emitter.on(event, listener);
  }

  /** @internal called by a handle */
  _cancel(rec: TaskRecord<unknown>, reason: unknown): boolean {
    const error =
      reason instanceof SchedulerClosedError || reason instanceof TaskCancelledError
        ? reason
        : new TaskCancelledError('task was cancelled', {
            cause: reason,
            context: { taskId: rec.id },
          });
    if (rec.st === QUEUED) {
      rec.st = CANCELLED;
      this.#queued--;
      this.#queuedBy[rec.prio]!--;
      if (rec.where === ADMITTING) rec.ext?.admission?.abort(error);
      else if (rec.where !== REMOVED) this.#dead++;
      this.#cancelled++;
      rec.disposeSignal();
      rec.settle(false, error);
      this.#settledEvent(rec, 'cancelled', 0, error);
      if (this.#dead > 1024 && this.#dead > this.#queued) this.#compact();
      this.#notify();
      return true;
    }
    if (rec.st === RUNNING) {
      rec.st = CANCELLED;
      this.#running--;
      this.#cancelled++;
      rec.clearTimer();
      rec.disposeSignal();
      rec.abort(error);
      rec.settle(false, error);
      this.#settledEvent(rec, 'cancelled', performance.now() - rec.at, error);
      return true;
    }
    return false;
  }

  /**
   * Cancels `rec` when `signal` aborts. One listener per distinct signal, however many tasks
   * share it (a shared deadline signal would otherwise collect a listener per task).
   */
  #watchSignal(rec: TaskRecord<unknown>, signal: AbortSignal): void {
    let watchers = this.#signalWatchers.get(signal);
    if (!watchers) {
      const set = new Set<TaskRecord<unknown>>();
      const onAbort = (): void => {
        this.#signalWatchers.delete(signal);
        for (const r of [...set]) this._cancel(r, signal.reason);
      };
      watchers = { set, onAbort };
      this.#signalWatchers.set(signal, watchers);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    const w = watchers;
    w.set.add(rec);
    rec.x.disposeSignal = () => {
      w.set.delete(rec);
      if (w.set.size === 0 && this.#signalWatchers.get(signal) === w) {
        this.#signalWatchers.delete(signal);
        signal.removeEventListener('abort', w.onAbort);
      }
    };
  }

  #pump(): void {
    if (this.#pumping) {
      this.#repump = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#repump = false;
        while (!this.#paused && this.#slots < this.#max) {
          const rec = this.#ready.size > 0 ? this.#takeReady() : this.#takeNext();
          if (!rec) break;
          this.#start(rec);
        }
      } while (this.#repump);
    } finally {
      this.#pumping = false;
    }
    this.#notify();
  }

  #takeReady(): TaskRecord<unknown> | undefined {
    while (this.#ready.size > 0) {
      const rec = this.#ready.shift()!;
      if (rec.st !== QUEUED) {
        this.#dead--;
        continue;
      }
      this.#queued--;
      this.#queuedBy[rec.prio]!--;
      return rec;
    }
    return undefined;
  }

  /**
   * The next record allowed to start now. Records whose key is at `keyConcurrency`, or has
   * `maxConcurrent` tasks already waiting for the rate limiter, are parked under their key
   * (so one throttled key never holds up the others); with a rate limiter, records go to
   * admission and the loop goes on.
   */
  #takeNext(): TaskRecord<unknown> | undefined {
    for (;;) {
      const level = this.#agingMs > 0 ? this.#agedLevel() : this.#topLevel();
      if (level < 0) return undefined;
      const q = this.#queues[level]!;
      const rec = q.shift()!;
      if (rec.st !== QUEUED) {
        this.#dead--;
        continue;
      }
      const key = rec.key;
      const capped = this.#keyCap !== 0 && key !== undefined;
      const limitKey = this.#limiter ? (key ?? 'default') : undefined;
      if (
        (capped && (this.#keyActive.get(key) ?? 0) >= this.#keyCap) ||
        (limitKey !== undefined && (this.#keyAdmitting.get(limitKey) ?? 0) >= this.#max)
      ) {
        rec.where = PARKED;
        const parkKey = key ?? 'default';
        let parked = this.#parked.get(parkKey);
        if (!parked) this.#parked.set(parkKey, (parked = new Deque(4)));
        parked.push(rec);
        continue;
      }
      if (capped) this.#keyActive.set(key, (this.#keyActive.get(key) ?? 0) + 1);
      if (limitKey !== undefined) {
        this.#keyAdmitting.set(limitKey, (this.#keyAdmitting.get(limitKey) ?? 0) + 1);
        this.#admit(rec, limitKey);
        continue;
      }
      this.#queued--;
      this.#queuedBy[rec.prio]!--;
      return rec;
    }
  }

  #topLevel(): number {
    for (let level = 3; level >= 0; level--) if (this.#queues[level]!.size > 0) return level;
    return -1;
  }

  /** Highest effective priority (level + waited / agingMs); ties go to the oldest. */
  #agedLevel(): number {
    const now = performance.now();
    let best = -1;
    let bestEff = -1;
    let bestAt = Infinity;
    for (let level = 3; level >= 0; level--) {
      const q = this.#queues[level]!;
      let head = q.peek();
      while (head && head.st !== QUEUED) {
        q.shift();
        this.#dead--;
        head = q.peek();
      }
      if (!head) continue;
      const eff = Math.min(3, level + Math.floor((now - head.at) / this.#agingMs));
      if (eff > bestEff || (eff === bestEff && head.at < bestAt)) {
        best = level;
        bestEff = eff;
        bestAt = head.at;
      }
    }
    return best;
  }

  /** Waits for the rate limiter without holding a slot. */
  #admit(rec: TaskRecord<unknown>, limitKey: string): void {
    rec.where = ADMITTING;
    this.#admitting.add(rec);
    const controller = new AbortController();
    rec.x.admission = controller;
    let pending: Promise<void>;
    try {
      pending = Promise.resolve(
        this.#limiter!.acquire(rec.key ?? 'default', {
          cost: rec.ext?.cost ?? 1,
          signal: controller.signal,
        }),
      );
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      () => {
        this.#admitting.delete(rec);
        rec.x.admission = undefined;
        this.#admissionDone(limitKey);
        if (rec.st === QUEUED) {
          rec.where = READY;
          this.#ready.push(rec);
        } else if (this.#keyCap !== 0 && rec.key !== undefined) {
          this.#releaseKey(rec.key);
        }
        this.#pump();
      },
      (error: unknown) => {
        this.#admitting.delete(rec);
        rec.x.admission = undefined;
        this.#admissionDone(limitKey);
        if (this.#keyCap !== 0 && rec.key !== undefined) this.#releaseKey(rec.key);
        if (rec.st === QUEUED) {
          // the limiter refused (e.g. a wait limit): the task fails without running
          rec.st = FAILED;
          this.#queued--;
          this.#queuedBy[rec.prio]!--;
          this.#failed++;
          rec.disposeSignal();
          rec.settle(false, error);
          this.#settledEvent(rec, 'failed', 0, error);
        }
        this.#pump();
      },
    );
  }

  #measureStart(waitMs: number): void {
    this.#metrics!.observe(MetricName.SCHEDULER_WAIT, waitMs, this.#labels);
    this.#metrics!.gauge(MetricName.SCHEDULER_QUEUE_DEPTH, this.#queued, this.#labels);
  }

  #start(rec: TaskRecord<unknown>): void {
    rec.st = RUNNING;
    this.#slots++;
    this.#running++;
    this.#started++;
    this.#active.add(rec);
    this.#busy = true;
    const now = performance.now();
    const wait = now - rec.at;
    rec.at = now;
    this.#totalWaitMs += wait;
    if (wait > this.#maxWaitMs) this.#maxWaitMs = wait;
    if (this.#metrics) this.#measureStart(wait);
    const timeoutMs = rec.ext?.timeoutMs ?? this.#defaultTimeoutMs;
    if (timeoutMs > 0) rec.x.timer = unrefTimeout(() => this.#timeout(rec, timeoutMs), timeoutMs);
    if (this.#emitter.has('taskStarted')) {
      this.#emitter.emit('taskStarted', {
        id: rec.id,
        priority: PRIORITIES[rec.prio]!,
        key: rec.key,
        waitMs: wait,
      });
    }
    let ret: unknown;
    try {
      ret = rec.fn(rec);
    } catch (error) {
      this.#finish(rec, false, error);
      return;
    }
    if (
      ret !== null &&
      typeof ret === 'object' &&
      typeof (ret as PromiseLike<unknown>).then === 'function'
    ) {
      (ret as PromiseLike<unknown>).then(
        (value) => this.#finish(rec, true, value),
        (error: unknown) => this.#finish(rec, false, error),
      );
    } else {
      this.#finish(rec, true, ret);
    }
  }

  #timeout(rec: TaskRecord<unknown>, timeoutMs: number): void {
    if (rec.st !== RUNNING) return;
    rec.st = TIMED_OUT;
    if (rec.ext) rec.ext.timer = undefined;
    this.#running--;
    this.#timedOut++;
    const error = new TaskTimeoutError(`task timed out after ${timeoutMs} ms`, {
      context: { taskId: rec.id, timeoutMs },
    });
    rec.disposeSignal();
    rec.abort(error);
    rec.settle(false, error);
    this.#settledEvent(rec, 'timed_out', performance.now() - rec.at, error);
  }

  /** The task's function returned: free its slot; settle it unless cancel/timeout did already. */
  #finish(rec: TaskRecord<unknown>, ok: boolean, value: unknown): void {
    this.#slots--;
    this.#active.delete(rec);
    if (this.#keyCap !== 0 && rec.key !== undefined) this.#releaseKey(rec.key);
    if (rec.st === RUNNING) {
      rec.clearTimer();
      rec.disposeSignal();
      this.#running--;
      const runMs = performance.now() - rec.at;
      this.#totalRunMs += runMs;
      if (runMs > this.#maxRunMs) this.#maxRunMs = runMs;
      if (ok) {
        rec.st = SUCCEEDED;
        this.#succeeded++;
      } else {
        rec.st = FAILED;
        this.#failed++;
      }
      rec.settle(ok, value);
      this.#settledEvent(rec, ok ? 'succeeded' : 'failed', runMs, ok ? undefined : value);
    }
    this.#pump();
  }

  /** A key's slot freed (keyConcurrency). */
  #releaseKey(key: string): void {
    const n = (this.#keyActive.get(key) ?? 1) - 1;
    if (n > 0) this.#keyActive.set(key, n);
    else this.#keyActive.delete(key);
    this.#unpark(key);
  }

  /** A rate-limiter wait of `key` ended. */
  #admissionDone(key: string): void {
    const n = (this.#keyAdmitting.get(key) ?? 1) - 1;
    if (n > 0) this.#keyAdmitting.set(key, n);
    else this.#keyAdmitting.delete(key);
    this.#unpark(key);
  }

  /** The oldest live parked task of `key` goes back to the front of its priority queue. */
  #unpark(key: string): void {
    const parked = this.#parked.get(key);
    if (!parked) return;
    while (parked.size > 0) {
      const rec = parked.shift()!;
      if (rec.st !== QUEUED) {
        this.#dead--;
        continue;
      }
      rec.where = IN_QUEUE;
      this.#queues[rec.prio]!.unshift(rec);
      break;
    }
    if (parked.size === 0) this.#parked.delete(key);
  }

  #settledEvent(rec: TaskRecord<unknown>, state: TaskState, runMs: number, error: unknown): void {
    if (!this.#emitter.has('taskSettled')) return;
    const payload = {
      id: rec.id,
      state: state as Exclude<TaskState, 'queued' | 'running'>,
      priority: PRIORITIES[rec.prio]! as Priority,
      key: rec.key,
      runMs,
      ...(error === undefined ? {} : { error }),
    };
    this.#emitter.emit('taskSettled', payload);
  }

  #compact(): void {
    const keep = (r: TaskRecord<unknown>): boolean => r.st === QUEUED;
    for (const q of this.#queues) q.filterInPlace(keep);
    this.#ready.filterInPlace(keep);
    for (const [key, q] of this.#parked) {
      q.filterInPlace(keep);
      if (q.size === 0) this.#parked.delete(key);
    }
    this.#dead = 0;
  }

  #notify(): void {
    if (this.#queued === 0 && this.#emptyWaiters.length > 0) {
      for (const resolve of this.#emptyWaiters.splice(0)) resolve();
    }
    if (this.#queued === 0 && this.#slots === 0) {
      if (this.#idleWaiters.length > 0)
        for (const resolve of this.#idleWaiters.splice(0)) resolve();
      if (this.#busy) {
        this.#busy = false;
        if (this.#emitter.has('idle')) this.#emitter.emit('idle', undefined);
      }
    }
  }
}

/**
 * Creates a {@link TaskScheduler}.
 *
 * @throws {@link ConfigError} naming the invalid option.
 * @example
 * ```ts
 * const scheduler = createScheduler({ maxConcurrent: 10, queueCapacity: 1000 });
 * const results = await scheduler.submitMany(urls.map((u) => () => fetch(u)));
 * ```
 */
export function createScheduler(options?: SchedulerOptions): TaskScheduler {
  return new TaskScheduler(options);
}
