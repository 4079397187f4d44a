/**
 * What a scheduler tells the outside about its tasks: its counters (`stats()`), its events, its
 * metrics, and the `onIdle` / `onEmpty` waits. The run loop counts a task in the same step that
 * changes its state.
 * @internal
 */
import { Emitter } from '../internal/emitter.js';
import { invalid, requireFunction } from '../internal/validate.js';
import { MetricName } from '../observe/metric-names.js';
import type { Metrics } from '../observe/metrics.js';
import { EVENT_NAMES } from './options.js';
import type { TaskQueue } from './task-queue.js';
import type { TaskRecord } from './task-record.js';
import {
  PRIORITIES,
  type Priority,
  type SchedulerEvents,
  type SchedulerStats,
  type TaskState,
} from './types.js';

/** A scheduler's counters, events, metrics and idle waits. @internal */
export class SchedulerReport {
  /** Tasks started and not yet settled. */
  running = 0;
  submitted = 0;
  started = 0;
  succeeded = 0;
  failed = 0;
  cancelled = 0;
  timedOut = 0;
  rejected = 0;
  #totalWaitMs = 0;
  #maxWaitMs = 0;
  #totalRunMs = 0;
  #maxRunMs = 0;
  readonly #emitter: Emitter<SchedulerEvents>;
  readonly #metrics: Metrics | undefined;
  readonly #labels: { scheduler: string };
  /** A task started since the last `idle` event. */
  #busy = false;
  #idleWaiters: (() => void)[] = [];
  #emptyWaiters: (() => void)[] = [];

  /** `name` is the `scheduler` label of the metrics. */
  constructor(metrics: Metrics | undefined, name: string) {
    this.#metrics = metrics;
    this.#labels = { scheduler: name };
    this.#emitter = new Emitter<SchedulerEvents>((error) => {
      if (this.#emitter.has('error')) this.#emitter.emit('error', error);
    });
  }

  /** See {@link TaskScheduler.on}. */
  on<K extends keyof SchedulerEvents>(
    event: K,
    listener: (payload: SchedulerEvents[K]) => void,
  ): () => void {
    if (!(EVENT_NAMES as readonly unknown[]).includes(event))
      invalid('on', 'event', `one of ${EVENT_NAMES.map((name) => `'${name}'`).join(', ')}`, event);
    requireFunction('on', 'listener', listener);
    return this.#emitter.on(event, listener);
  }

  /** The stats, with the queue's gauges and the slots in use. */
  stats(queue: TaskQueue, activeSlots: number): SchedulerStats {
    return {
      queued: queue.size,
      queuedByPriority: {
        low: queue.sizeAt(0),
        normal: queue.sizeAt(1),
        high: queue.sizeAt(2),
        critical: queue.sizeAt(3),
      },
      running: this.running,
      submitted: this.submitted,
      started: this.started,
      succeeded: this.succeeded,
      failed: this.failed,
      cancelled: this.cancelled,
      timedOut: this.timedOut,
      rejected: this.rejected,
      activeSlots,
      totalWaitMs: this.#totalWaitMs,
      maxWaitMs: this.#maxWaitMs,
      totalRunMs: this.#totalRunMs,
      maxRunMs: this.#maxRunMs,
    };
  }

  /** A task was queued; `queued` wait now. */
  taskQueued(queued: number): void {
    if (this.#metrics) this.#metrics.gauge(MetricName.SCHEDULER_QUEUE_DEPTH, queued, this.#labels);
  }

  /** A task starts after waiting `waitMs`; `queued` still wait. */
  taskStarted(rec: TaskRecord<unknown>, waitMs: number, queued: number): void {
    this.running++;
    this.started++;
    this.#busy = true;
    this.#totalWaitMs += waitMs;
    if (waitMs > this.#maxWaitMs) this.#maxWaitMs = waitMs;
    if (this.#metrics) this.#measureStart(waitMs, queued);
    if (this.#emitter.has('taskStarted')) {
      this.#emitter.emit('taskStarted', {
        id: rec.id,
        priority: PRIORITIES[rec.priority]!,
        key: rec.key,
        waitMs,
      });
    }
  }

  /** A task's function returned after `runMs` (before it is settled and counted). */
  taskRan(runMs: number): void {
    this.#totalRunMs += runMs;
    if (runMs > this.#maxRunMs) this.#maxRunMs = runMs;
  }

  /** The `taskSettled` event of a task settled (and counted) as `state`. */
  taskSettled(rec: TaskRecord<unknown>, state: TaskState, runMs: number, error: unknown): void {
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

  /** Resolves when nothing is queued and every slot is free (now, when that is so). */
  onIdle(queued: number, activeSlots: number): Promise<void> {
    if (queued === 0 && activeSlots === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Resolves when nothing is queued (now, when that is so). */
  onEmpty(queued: number): Promise<void> {
    if (queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.#emptyWaiters.push(resolve));
  }

  /** Wakes the `onEmpty` and `onIdle` waits that now hold, and emits `idle` once per busy spell. */
  notify(queued: number, activeSlots: number): void {
    if (queued === 0 && this.#emptyWaiters.length > 0) {
      for (const resolve of this.#emptyWaiters.splice(0)) resolve();
    }
    if (queued === 0 && activeSlots === 0) {
      if (this.#idleWaiters.length > 0)
        for (const resolve of this.#idleWaiters.splice(0)) resolve();
      if (this.#busy) {
        this.#busy = false;
        if (this.#emitter.has('idle')) this.#emitter.emit('idle', undefined);
      }
    }
  }

  #measureStart(waitMs: number, queued: number): void {
    this.#metrics!.observe(MetricName.SCHEDULER_WAIT, waitMs, this.#labels);
    this.#metrics!.gauge(MetricName.SCHEDULER_QUEUE_DEPTH, queued, this.#labels);
  }
}
