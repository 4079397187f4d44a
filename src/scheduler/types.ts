/**
 * Public types of the task scheduler.
 */
import type { Metrics } from '../observe/metrics.js';

/** Task priority, lowest to highest. */
export type Priority = 'low' | 'normal' | 'high' | 'critical';

/** The priorities, lowest first. */
export const PRIORITIES: readonly Priority[] = Object.freeze(['low', 'normal', 'high', 'critical']);

/** Lifecycle state of a task. */
export type TaskState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'timed_out';

/** What a task function receives. */
export interface TaskContext {
  /** The task id (`SubmitOptions.id`, or one the scheduler made). */
  readonly id: string;
  /** Aborted when the task is cancelled, times out, or the scheduler shuts down in cancel mode. */
  readonly signal: AbortSignal;
}

/** A task: a function of its context returning a value or a promise. */
export type Task<T> = (ctx: TaskContext) => T | PromiseLike<T>;

/** Options of one submit. */
export interface SubmitOptions {
  /** Priority; FIFO within a priority. @defaultValue 'normal' */
  priority?: Priority;
  /** Concurrency key (e.g. a plugin or host): limits `keyConcurrency` and selects the rate-limit bucket. */
  key?: string;
  /** Cancels the task when aborted (queued: it never starts; running: its signal aborts). */
  signal?: AbortSignal;
  /** Rejects with TaskTimeoutError (and aborts the task's signal) after this many ms of running. */
  timeoutMs?: number;
  /** Task id. @defaultValue an id the scheduler makes */
  id?: string;
  /** Rate-limit cost, passed to the `rateLimiter`. @defaultValue 1 */
  cost?: number;
}

/** What `submit` returns. */
export interface TaskHandle<T> {
  /** The task id. */
  readonly id: string;
  /** Settles with the task's value, or rejects (TaskCancelledError, TaskTimeoutError, QueueFullError, SchedulerClosedError, or the task's own error). */
  readonly result: Promise<T>;
  /** Cancels the task; false when it had already settled. */
  cancel(reason?: unknown): boolean;
  /** The current state. */
  readonly state: TaskState;
}

/** Counters and gauges of a scheduler. `submitted = rejected + queued + running + settled`. */
export interface SchedulerStats {
  /** Tasks waiting to start (including those waiting for the rate limiter or a key slot). */
  queued: number;
  /** Waiting tasks by priority. */
  queuedByPriority: Record<Priority, number>;
  /** Tasks started and not yet settled. */
  running: number;
  /** Accepted submits (valid input), including those then rejected. */
  submitted: number;
  /** Tasks that started running. */
  started: number;
  /** Tasks that returned a value. */
  succeeded: number;
  /** Tasks that threw or rejected. */
  failed: number;
  /** Tasks cancelled (queued or running). */
  cancelled: number;
  /** Tasks that ran past their timeout. */
  timedOut: number;
  /** Submits refused (queue full or scheduler closed). */
  rejected: number;
  /** Concurrency slots in use (a cancelled or timed-out task keeps its slot until its function returns). */
  activeSlots: number;
  /** Sum of the time tasks waited before starting, in ms. */
  totalWaitMs: number;
  /** Longest wait before starting, in ms. */
  maxWaitMs: number;
  /** Sum of the running time of settled tasks, in ms. */
  totalRunMs: number;
  /** Longest running time of a settled task, in ms. */
  maxRunMs: number;
}

/**
 * What the scheduler needs from a rate limiter: wait until `key` may proceed. mocra's
 * `RateLimiter` fits; so does anything with this method.
 */
export interface SchedulerRateLimiter {
  /** Resolves when `cost` tokens for `key` were taken; rejects when `signal` aborts. */
  acquire(key: string, options?: { cost?: number; signal?: AbortSignal }): Promise<void>;
}

/** Options of `createScheduler`. */
export interface SchedulerOptions {
  /** Most tasks running at once (integer >= 1). @defaultValue 10 */
  maxConcurrent?: number;
  /** Most tasks waiting (integer >= 0, or Infinity); a submit beyond it rejects with QueueFullError. @defaultValue 1000 */
  queueCapacity?: number;
  /** Timeout of every task without its own `timeoutMs`, in ms. @defaultValue none */
  defaultTimeoutMs?: number;
  /** Starvation guard: a task waiting this long (ms) is served as if one priority higher, and so on. @defaultValue off */
  agingMs?: number;
  /** Most tasks running at once per `SubmitOptions.key`. @defaultValue off */
  keyConcurrency?: number;
  /** Consulted (by key, default key `'default'`) before a task starts. Waiting for it takes no run slot. */
  rateLimiter?: SchedulerRateLimiter;
  /** Start paused (call `resume()`). @defaultValue false */
  paused?: boolean;
  /** Where queue depth and wait times are reported (`scheduler_queue_depth`, `scheduler_wait_ms`). @defaultValue none */
  metrics?: Metrics;
  /** The `scheduler` label of its metrics. @defaultValue 'scheduler' */
  name?: string;
}

/** Payload of the `taskStarted` event. */
export interface TaskStartedEvent {
  /** The task id. */
  id: string;
  /** The task's priority. */
  priority: Priority;
  /** The task's key, if any. */
  key: string | undefined;
  /** How long it waited, in ms. */
  waitMs: number;
}

/** Payload of the `taskSettled` event. */
export interface TaskSettledEvent {
  /** The task id. */
  id: string;
  /** How it ended. */
  state: Exclude<TaskState, 'queued' | 'running'>;
  /** The task's priority. */
  priority: Priority;
  /** The task's key, if any. */
  key: string | undefined;
  /** Running time in ms (0 if it never started). */
  runMs: number;
  /** The error, for failed, cancelled and timed-out tasks. */
  error?: unknown;
}

/** Events a scheduler emits; subscribing costs nothing on the hot path while nobody listens. */
export interface SchedulerEvents {
  /** A task started running. */
  taskStarted: TaskStartedEvent;
  /** A task settled. */
  taskSettled: TaskSettledEvent;
  /** Nothing is queued or running. */
  idle: undefined;
  /** A listener threw (the error is isolated here). */
  error: unknown;
}
