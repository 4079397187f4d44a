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
  optionalNumber,
  optionalSignal,
  readOptions,
  requireFunction,
} from '../internal/validate.js';
import {
  ADMITTING,
  CANCELLED,
  FAILED,
  IN_QUEUE,
  PARKED,
  QUEUED,
  READY,
  REMOVED,
  RUNNING,
  SUCCEEDED,
  TIMED_OUT,
  TaskRecord,
} from './task-record.js';
import { EVENT_NAMES, PRIORITY_INDEX, SUBMIT_KEYS, readSchedulerOptions } from './options.js';
import { SignalWatchers } from '../internal/signal-watchers.js';
import { MetricName } from '../observe/metric-names.js';
import type { Metrics } from '../observe/metrics.js';
import {
  PRIORITIES,
  type Priority,
  type SchedulerEvents,
  type SchedulerOptions,
  type SchedulerRateLimiter,
  type SchedulerStats,
  type SubmitOptions,
  type Task,
  type TaskHandle,
  type TaskState,
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
  readonly #agingMs: number;
  readonly #keyConcurrency: number;
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
  readonly #signalWatchers = new SignalWatchers<TaskRecord<unknown>>((record, reason) =>
    this._cancel(record, reason),
  );
  #busy = false;
  readonly #emitter: Emitter<SchedulerEvents>;
  readonly #queuedByLevel = [0, 0, 0, 0];
  #queued = 0;
  #deadEntries = 0;
  #busySlots = 0;
  #running = 0;
  #sequence = 0;
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
    const o = readSchedulerOptions(options);
    this.#maxConcurrent = o.maxConcurrent;
    this.#capacity = o.queueCapacity;
    this.#defaultTimeoutMs = o.defaultTimeoutMs;
    this.#agingMs = o.agingMs;
    this.#keyConcurrency = o.keyConcurrency;
    this.#limiter = o.rateLimiter;
    this.#paused = o.paused;
    this.#metrics = o.metrics;
    this.#labels = { scheduler: o.name };
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
    let level = 1;
    let key: string | undefined;
    let timeoutMs = this.#defaultTimeoutMs;
    let id: string | undefined;
    let signal: AbortSignal | undefined;
    let cost = 1;
    if (options !== undefined) {
      const o = readOptions('submit', options, SUBMIT_KEYS);
      if (o.priority !== undefined) {
        const found = PRIORITY_INDEX.get(o.priority);
        if (found === undefined) {
          invalid(
            'submit',
            'priority',
            `one of ${PRIORITIES.map((name) => `'${name}'`).join(', ')}`,
            o.priority,
          );
        }
        level = found;
      }
      if (o.key !== undefined) {
        if (typeof o.key !== 'string') invalid('submit', 'key', 'a string', o.key);
        key = o.key;
      }
      if (o.timeoutMs !== undefined) {
        timeoutMs = optionalNumber('submit', 'timeoutMs', o.timeoutMs, 0, {
          integer: true,
          min: 1,
          max: MAX_TIMER_DELAY_MS,
        });
      }
      if (o.id !== undefined) {
        if (typeof o.id !== 'string' || o.id.length === 0)
          invalid('submit', 'id', 'a non-empty string', o.id);
        id = o.id;
      }
      if (o.cost !== undefined)
        cost = optionalNumber('submit', 'cost', o.cost, 1, { integer: true, min: 0 });
      signal = optionalSignal('submit', 'signal', o.signal);
    }
    this.#submitted++;
    const rec = new TaskRecord<T>(this, task, level, ++this.#sequence, performance.now());
    if (key !== undefined) rec.ensureExtras().key = key;
    if (id !== undefined) rec.ensureExtras().id = id;
    if (timeoutMs !== this.#defaultTimeoutMs) rec.ensureExtras().timeoutMs = timeoutMs;
    if (cost !== 1) rec.ensureExtras().cost = cost;
    if (this.#closed) {
      rec.status = FAILED; // refused: counted as rejected, never run
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
      rec.status = CANCELLED;
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
      this.#busySlots < this.#maxConcurrent &&
      this.#limiter === undefined &&
      (this.#keyConcurrency === 0 ||
        key === undefined ||
        (this.#keyActive.get(key) ?? 0) < this.#keyConcurrency)
    ) {
      if (signal)
        generic.ensureExtras().disposeSignal = this.#signalWatchers.watch(generic, signal);
      if (this.#keyConcurrency !== 0 && key !== undefined)
        this.#keyActive.set(key, (this.#keyActive.get(key) ?? 0) + 1);
      this.#start(generic);
      return rec;
    }
    if (this.#queued >= this.#capacity) {
      rec.status = FAILED; // refused: counted as rejected, never run
      this.#rejected++;
      rec.settle(
        false,
        new QueueFullError(`queue is full (queueCapacity ${this.#capacity})`, {
          context: { taskId: rec.id, key },
        }),
      );
      return rec;
    }
    if (signal) generic.ensureExtras().disposeSignal = this.#signalWatchers.watch(generic, signal);
    this.#queued++;
    this.#queuedByLevel[level]!++;
    this.#queues[level]!.push(generic);
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
    if (this.#queued === 0 && this.#busySlots === 0) return Promise.resolve();
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
      for (const queue of [...this.#queues, this.#ready, ...this.#parked.values()]) {
        queue.filterInPlace((record) => {
          if (record.status === QUEUED) waiting.push(record);
          return false;
        });
      }
      this.#deadEntries = 0;
      for (const record of waiting) {
        record.place = REMOVED;
        this._cancel(record, reason);
      }
      for (const record of [...this.#admitting]) this._cancel(record, reason);
      for (const record of [...this.#active]) this._cancel(record, reason);
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
        low: this.#queuedByLevel[0]!,
        normal: this.#queuedByLevel[1]!,
        high: this.#queuedByLevel[2]!,
        critical: this.#queuedByLevel[3]!,
      },
      running: this.#running,
      submitted: this.#submitted,
      started: this.#started,
      succeeded: this.#succeeded,
      failed: this.#failed,
      cancelled: this.#cancelled,
      timedOut: this.#timedOut,
      rejected: this.#rejected,
      activeSlots: this.#busySlots,
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
    if (!(EVENT_NAMES as readonly unknown[]).includes(event))
      invalid('on', 'event', `one of ${EVENT_NAMES.map((name) => `'${name}'`).join(', ')}`, event);
    requireFunction('on', 'listener', listener);
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
    if (rec.status === QUEUED) {
      rec.status = CANCELLED;
      this.#queued--;
      this.#queuedByLevel[rec.priority]!--;
      if (rec.place === ADMITTING) rec.extras?.admission?.abort(error);
      else if (rec.place !== REMOVED) this.#deadEntries++;
      this.#cancelled++;
      rec.disposeSignal();
      rec.settle(false, error);
      this.#settledEvent(rec, 'cancelled', 0, error);
      if (this.#deadEntries > 1024 && this.#deadEntries > this.#queued) this.#compact();
      this.#notify();
      return true;
    }
    if (rec.status === RUNNING) {
      rec.status = CANCELLED;
      this.#running--;
      this.#cancelled++;
      rec.clearTimer();
      rec.disposeSignal();
      rec.abort(error);
      rec.settle(false, error);
      this.#settledEvent(rec, 'cancelled', performance.now() - rec.timestamp, error);
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
      if (rec.status !== QUEUED) {
        this.#deadEntries--;
        continue;
      }
      this.#queued--;
      this.#queuedByLevel[rec.priority]!--;
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
      const queue = this.#queues[level]!;
      const rec = queue.shift()!;
      if (rec.status !== QUEUED) {
        this.#deadEntries--;
        continue;
      }
      const key = rec.key;
      const capped = this.#keyConcurrency !== 0 && key !== undefined;
      const limitKey = this.#limiter ? (key ?? 'default') : undefined;
      if (
        (capped && (this.#keyActive.get(key) ?? 0) >= this.#keyConcurrency) ||
        (limitKey !== undefined && (this.#keyAdmitting.get(limitKey) ?? 0) >= this.#maxConcurrent)
      ) {
        rec.place = PARKED;
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
      this.#queuedByLevel[rec.priority]!--;
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
      const queue = this.#queues[level]!;
      let head = queue.peek();
      while (head && head.status !== QUEUED) {
        queue.shift();
        this.#deadEntries--;
        head = queue.peek();
      }
      if (!head) continue;
      const eff = Math.min(3, level + Math.floor((now - head.timestamp) / this.#agingMs));
      if (eff > bestEff || (eff === bestEff && head.timestamp < bestAt)) {
        best = level;
        bestEff = eff;
        bestAt = head.timestamp;
      }
    }
    return best;
  }

  /** Waits for the rate limiter without holding a slot. */
  #admit(rec: TaskRecord<unknown>, limitKey: string): void {
    rec.place = ADMITTING;
    this.#admitting.add(rec);
    const controller = new AbortController();
    rec.ensureExtras().admission = controller;
    let pending: Promise<void>;
    try {
      pending = Promise.resolve(
        this.#limiter!.acquire(rec.key ?? 'default', {
          cost: rec.extras?.cost ?? 1,
          signal: controller.signal,
        }),
      );
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      () => {
        this.#admitting.delete(rec);
        rec.ensureExtras().admission = undefined;
        this.#admissionDone(limitKey);
        if (rec.status === QUEUED) {
          rec.place = READY;
          this.#ready.push(rec);
        } else if (this.#keyConcurrency !== 0 && rec.key !== undefined) {
          this.#releaseKey(rec.key);
        }
        this.#pump();
      },
      (error: unknown) => {
        this.#admitting.delete(rec);
        rec.ensureExtras().admission = undefined;
        this.#admissionDone(limitKey);
        if (this.#keyConcurrency !== 0 && rec.key !== undefined) this.#releaseKey(rec.key);
        if (rec.status === QUEUED) {
          // the limiter refused (e.g. a wait limit): the task fails without running
          rec.status = FAILED;
          this.#queued--;
          this.#queuedByLevel[rec.priority]!--;
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
    rec.status = RUNNING;
    this.#busySlots++;
    this.#running++;
    this.#started++;
    this.#active.add(rec);
    this.#busy = true;
    const now = performance.now();
    const wait = now - rec.timestamp;
    rec.timestamp = now;
    this.#totalWaitMs += wait;
    if (wait > this.#maxWaitMs) this.#maxWaitMs = wait;
    if (this.#metrics) this.#measureStart(wait);
    const timeoutMs = rec.extras?.timeoutMs ?? this.#defaultTimeoutMs;
    if (timeoutMs > 0)
      rec.ensureExtras().timer = unrefTimeout(() => this.#timeout(rec, timeoutMs), timeoutMs);
    if (this.#emitter.has('taskStarted')) {
      this.#emitter.emit('taskStarted', {
        id: rec.id,
        priority: PRIORITIES[rec.priority]!,
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
    if (rec.status !== RUNNING) return;
    rec.status = TIMED_OUT;
    if (rec.extras) rec.extras.timer = undefined;
    this.#running--;
    this.#timedOut++;
    const error = new TaskTimeoutError(`task timed out after ${timeoutMs} ms`, {
      context: { taskId: rec.id, timeoutMs },
    });
    rec.disposeSignal();
    rec.abort(error);
    rec.settle(false, error);
    this.#settledEvent(rec, 'timed_out', performance.now() - rec.timestamp, error);
  }

  /** The task's function returned: free its slot; settle it unless cancel/timeout did already. */
  #finish(rec: TaskRecord<unknown>, ok: boolean, value: unknown): void {
    this.#busySlots--;
    this.#active.delete(rec);
    if (this.#keyConcurrency !== 0 && rec.key !== undefined) this.#releaseKey(rec.key);
    if (rec.status === RUNNING) {
      rec.clearTimer();
      rec.disposeSignal();
      this.#running--;
      const runMs = performance.now() - rec.timestamp;
      this.#totalRunMs += runMs;
      if (runMs > this.#maxRunMs) this.#maxRunMs = runMs;
      if (ok) {
        rec.status = SUCCEEDED;
        this.#succeeded++;
      } else {
        rec.status = FAILED;
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
      if (rec.status !== QUEUED) {
        this.#deadEntries--;
        continue;
      }
      rec.place = IN_QUEUE;
      this.#queues[rec.priority]!.unshift(rec);
      break;
    }
    if (parked.size === 0) this.#parked.delete(key);
  }

  #settledEvent(rec: TaskRecord<unknown>, state: TaskState, runMs: number, error: unknown): void {
    if (!this.#emitter.has('taskSettled')) return;
    const payload = {
      id: rec.id,
      state: state as Exclude<TaskState, 'queued' | 'running'>,
      priority: PRIORITIES[rec.priority]! as Priority,
      key: rec.key,
      runMs,
      ...(error === undefined ? {} : { error }),
    };
    this.#emitter.emit('taskSettled', payload);
  }

  #compact(): void {
    const keep = (record: TaskRecord<unknown>): boolean => record.status === QUEUED;
    for (const queue of this.#queues) queue.filterInPlace(keep);
    this.#ready.filterInPlace(keep);
    for (const [key, queue] of this.#parked) {
      queue.filterInPlace(keep);
      if (queue.size === 0) this.#parked.delete(key);
    }
    this.#deadEntries = 0;
  }

  #notify(): void {
    if (this.#queued === 0 && this.#emptyWaiters.length > 0) {
      for (const resolve of this.#emptyWaiters.splice(0)) resolve();
    }
    if (this.#queued === 0 && this.#busySlots === 0) {
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
