/**
 * The priority task scheduler: its calls and its run loop (starting tasks into free slots and
 * settling them when they return, are cancelled or time out). Its waiting tasks are in
 * task-queue.ts, who may start in admission.ts, its counters, events and idle waits in
 * report.ts, the checks of its options in options.ts.
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
import { unrefTimeout } from '../internal/clock.js';
import { SignalWatchers } from '../internal/signal-watchers.js';
import { describeValue, invalid, readOptions } from '../internal/validate.js';
import {
  ADMITTING,
  CANCELLED,
  FAILED,
  QUEUED,
  READY,
  RUNNING,
  SUCCEEDED,
  TIMED_OUT,
  TaskRecord,
} from './task-record.js';
import { readSchedulerOptions, readSubmitOptions, type ResolvedSubmitOptions } from './options.js';
import { Admission } from './admission.js';
import { SchedulerReport } from './report.js';
import { TaskQueue } from './task-queue.js';
import {
  type SchedulerEvents,
  type SchedulerOptions,
  type SchedulerStats,
  type SubmitOptions,
  type Task,
  type TaskHandle,
} from './types.js';

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
  readonly #maxConcurrent: number;
  readonly #capacity: number;
  readonly #defaultTimeoutMs: number;
  /** What a submit without options gets. */
  readonly #submitDefaults: ResolvedSubmitOptions;
  readonly #queue: TaskQueue;
  readonly #admission: Admission;
  readonly #active = new Set<TaskRecord<unknown>>();
  readonly #signalWatchers = new SignalWatchers<TaskRecord<unknown>>((record, reason) =>
    this._cancel(record, reason),
  );
  readonly #report: SchedulerReport;
  #busySlots = 0;
  #sequence = 0;
  #paused: boolean;
  #closed = false;
  #pumping = false;
  #repump = false;

  /** @throws {@link ConfigError} on invalid options. Prefer {@link createScheduler}. */
  constructor(options: SchedulerOptions = {}) {
    const o = readSchedulerOptions(options);
    this.#maxConcurrent = o.maxConcurrent;
    this.#capacity = o.queueCapacity;
    this.#defaultTimeoutMs = o.defaultTimeoutMs;
    this.#submitDefaults = readSubmitOptions(undefined, o.defaultTimeoutMs);
    this.#queue = new TaskQueue(o.agingMs);
    this.#admission = new Admission(
      o.keyConcurrency,
      o.maxConcurrent,
      o.rateLimiter,
      this.#queue,
      (rec, refused, error) => this.#admitted(rec, refused, error),
    );
    this.#paused = o.paused;
    this.#report = new SchedulerReport(o.metrics, o.name);
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
    const { level, key, timeoutMs, id, signal, cost } =
      options === undefined
        ? this.#submitDefaults
        : readSubmitOptions(options, this.#defaultTimeoutMs);
    const rec = new TaskRecord<T>(this, task, level, ++this.#sequence, performance.now());
    if (key !== undefined) rec.ensureExtras().key = key;
    if (id !== undefined) rec.ensureExtras().id = id;
    if (timeoutMs !== this.#defaultTimeoutMs) rec.ensureExtras().timeoutMs = timeoutMs;
    if (cost !== 1) rec.ensureExtras().cost = cost;
    return this.#submit(rec, key, signal, false);
  }

  /**
   * Runs a task mocra submits itself, with the default priority and timeout: `key` and `signal`
   * are not checked, and the task settles by itself soon after `signal` aborts (it races the
   * signal). So the scheduler watches `signal` only while the task waits: a task that starts
   * at once adds no listener to it. An abort while it runs ends it through its own rejection
   * (counted as failed, not cancelled); its slot frees when it returns, as always.
   * @internal
   */
  _runOwn<T>(task: Task<T>, key: string | undefined, signal: AbortSignal): Promise<T> {
    const rec = new TaskRecord<T>(this, task, 1, ++this.#sequence, performance.now());
    if (key !== undefined) rec.ensureExtras().key = key;
    return this.#submit(rec, key, signal, true).result;
  }

  #submit<T>(
    rec: TaskRecord<T>,
    key: string | undefined,
    signal: AbortSignal | undefined,
    settlesOnAbort: boolean,
  ): TaskHandle<T> {
    this.#report.submitted++;
    if (this.#closed) {
      rec.status = FAILED; // refused: counted as rejected, never run
      this.#report.rejected++;
      rec.settle(
        false,
        new SchedulerClosedError('scheduler is shut down; submit refused', {
          context: { taskId: rec.id },
        }),
      );
      return rec;
    }
    if (signal?.aborted) {
      rec.status = CANCELLED;
      this.#report.cancelled++;
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
      this.#queue.size === 0 &&
      !this.#paused &&
      this.#busySlots < this.#maxConcurrent &&
      this.#admission.isOpen(key)
    ) {
      if (signal && !settlesOnAbort)
        generic.ensureExtras().disposeSignal = this.#signalWatchers.watch(generic, signal);
      this.#admission.hold(key);
      this.#start(generic);
      return rec;
    }
    if (this.#queue.size >= this.#capacity) {
      rec.status = FAILED; // refused: counted as rejected, never run
      this.#report.rejected++;
      rec.settle(
        false,
        new QueueFullError(`queue is full (queueCapacity ${this.#capacity})`, {
          context: { taskId: rec.id, key },
        }),
      );
      return rec;
    }
    if (signal) {
      const extras = generic.ensureExtras();
      extras.disposeSignal = this.#signalWatchers.watch(generic, signal);
      if (settlesOnAbort) extras.settlesOnAbort = true;
    }
    this.#queue.push(generic);
    this.#report.taskQueued(this.#queue.size);
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
    return this.#report.onIdle(this.#queue.size, this.#busySlots);
  }

  /** Resolves when nothing is queued (tasks may still run). */
  onEmpty(): Promise<void> {
    return this.#report.onEmpty(this.#queue.size);
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
      this.#queue.drain((record) => this._cancel(record, reason));
      for (const record of [...this.#admission.waiting]) this._cancel(record, reason);
      for (const record of [...this.#active]) this._cancel(record, reason);
    } else if (this.#paused) {
      this.resume();
    }
    await this.onIdle();
  }

  /** Counters and gauges; `submitted = rejected + queued + running + settled` always holds. */
  stats(): SchedulerStats {
    return this.#report.stats(this.#queue, this.#busySlots);
  }

  /**
   * Subscribes to an event; returns an unsubscribe function. Listener errors are isolated and
   * re-emitted as `error`.
   */
  on<K extends keyof SchedulerEvents>(
    event: K,
    listener: (payload: SchedulerEvents[K]) => void,
  ): () => void {
    return this.#report.on(event, listener);
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
    if (rec.status === QUEUED) {
      rec.status = CANCELLED;
      this.#queue.remove(rec);
      if (rec.place === ADMITTING) rec.extras?.admission?.abort(error);
      this.#report.cancelled++;
      rec.disposeSignal();
      rec.settle(false, error);
      this.#report.taskSettled(rec, 'cancelled', 0, error);
      this.#queue.compactIfSparse();
      if (rec.place === READY) {
        // let through, it held its key slot: give it back (its key's next task may go on)
        this.#admission.release(rec.key);
        this.#pump();
      } else {
        this.#report.notify(this.#queue.size, this.#busySlots);
      }
      return true;
    }
    if (rec.status === RUNNING) {
      rec.status = CANCELLED;
      this.#report.running--;
      this.#report.cancelled++;
      rec.clearTimer();
      rec.disposeSignal();
      rec.abort(error);
      rec.settle(false, error);
      this.#report.taskSettled(rec, 'cancelled', performance.now() - rec.timestamp, error);
      return true;
    }
    return false;
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
        while (!this.#paused && this.#busySlots < this.#maxConcurrent) {
          // a let-through line holding only cancelled entries falls through to the FIFOs
          const rec = this.#queue.takeReady() ?? this.#takeNext();
          if (!rec) break;
          this.#start(rec);
        }
      } while (this.#repump);
    } finally {
      this.#pumping = false;
    }
    this.#report.notify(this.#queue.size, this.#busySlots);
  }

  /**
   * The next task allowed to start now. Tasks whose key is at `keyConcurrency`, or has
   * `maxConcurrent` tasks already waiting for the rate limiter, are parked under their key
   * (so one throttled key never holds up the others); with a rate limiter, tasks go to
   * admission and the loop goes on.
   */
  #takeNext(): TaskRecord<unknown> | undefined {
    for (;;) {
      const rec = this.#queue.next();
      if (!rec) return undefined;
      if (!this.#admission.pass(rec)) continue;
      this.#queue.leave(rec);
      return rec;
    }
  }

  /** A task's rate-limiter wait ended; a refusal (e.g. a wait limit) fails it without running. */
  #admitted(rec: TaskRecord<unknown>, refused: boolean, error: unknown): void {
    if (refused && rec.status === QUEUED) {
      rec.status = FAILED;
      this.#queue.leave(rec);
      this.#report.failed++;
      rec.disposeSignal();
      rec.settle(false, error);
      this.#report.taskSettled(rec, 'failed', 0, error);
    }
    this.#pump();
  }

  #start(rec: TaskRecord<unknown>): void {
    rec.status = RUNNING;
    // a task that settles by itself on abort is watched only while it waits
    if (rec.extras?.settlesOnAbort === true) rec.disposeSignal();
    this.#busySlots++;
    this.#active.add(rec);
    const now = performance.now();
    const wait = now - rec.timestamp;
    rec.timestamp = now;
    const timeoutMs = rec.extras?.timeoutMs ?? this.#defaultTimeoutMs;
    if (timeoutMs > 0)
      rec.ensureExtras().timer = unrefTimeout(() => this.#timeout(rec, timeoutMs), timeoutMs);
    this.#report.taskStarted(rec, wait, this.#queue.size);
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
    if (rec.status !== RUNNING) return;
    rec.status = TIMED_OUT;
    if (rec.extras) rec.extras.timer = undefined;
    this.#report.running--;
    this.#report.timedOut++;
    const error = new TaskTimeoutError(`task timed out after ${timeoutMs} ms`, {
      context: { taskId: rec.id, timeoutMs },
    });
    rec.disposeSignal();
    rec.abort(error);
    rec.settle(false, error);
    this.#report.taskSettled(rec, 'timed_out', performance.now() - rec.timestamp, error);
  }

  /** The task's function returned: free its slot; settle it unless cancel/timeout did already. */
  #finish(rec: TaskRecord<unknown>, ok: boolean, value: unknown): void {
    this.#busySlots--;
    this.#active.delete(rec);
    this.#admission.release(rec.key);
    if (rec.status === RUNNING) {
      rec.clearTimer();
      rec.disposeSignal();
      this.#report.running--;
      const runMs = performance.now() - rec.timestamp;
      this.#report.taskRan(runMs);
      if (ok) {
        rec.status = SUCCEEDED;
        this.#report.succeeded++;
      } else {
        rec.status = FAILED;
        this.#report.failed++;
      }
      rec.settle(ok, value);
      this.#report.taskSettled(rec, ok ? 'succeeded' : 'failed', runMs, ok ? undefined : value);
    }
    this.#pump();
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
