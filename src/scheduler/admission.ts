/**
 * Which task a scheduler may start: the per-key cap (`keyConcurrency`) and the rate limiter,
 * waited for without holding a run slot (at most `maxConcurrent` waits per limiter key at once).
 * A task held back by either is parked under its key in the queue, and unparked when its key
 * frees up.
 * @internal
 */
import { ADMITTING, QUEUED, type TaskRecord } from './task-record.js';
import type { TaskQueue } from './task-queue.js';
import type { SchedulerRateLimiter } from './types.js';

/**
 * Called when a task's rate-limiter wait ended (its key slots already freed, and the task put in
 * the ready line if it was let through while still queued); `refused` with the limiter's error.
 * @internal
 */
export type AdmissionEnded = (rec: TaskRecord<unknown>, refused: boolean, error: unknown) => void;

/** The key caps and rate-limiter waits of one scheduler. @internal */
export class Admission {
  readonly #keyConcurrency: number;
  readonly #maxConcurrent: number;
  readonly #limiter: SchedulerRateLimiter | undefined;
  readonly #queue: TaskQueue;
  readonly #ended: AdmissionEnded;
  /** Tasks running by key (`keyConcurrency`). */
  readonly #active = new Map<string, number>();
  /** Rate-limiter waits by limiter key. */
  readonly #admitting = new Map<string, number>();
  readonly #waiting = new Set<TaskRecord<unknown>>();

  constructor(
    keyConcurrency: number,
    maxConcurrent: number,
    limiter: SchedulerRateLimiter | undefined,
    queue: TaskQueue,
    ended: AdmissionEnded,
  ) {
    this.#keyConcurrency = keyConcurrency;
    this.#maxConcurrent = maxConcurrent;
    this.#limiter = limiter;
    this.#queue = queue;
    this.#ended = ended;
  }

  /** Tasks waiting for the rate limiter now. */
  get waiting(): ReadonlySet<TaskRecord<unknown>> {
    return this.#waiting;
  }

  /** Whether a task of `key` may start without waiting: no rate limiter, and a free key slot. */
  isOpen(key: string | undefined): boolean {
    return (
      this.#limiter === undefined &&
      (this.#keyConcurrency === 0 ||
        key === undefined ||
        (this.#active.get(key) ?? 0) < this.#keyConcurrency)
    );
  }

  /** A task of `key` starts at once: it takes one of its key's slots. */
  hold(key: string | undefined): void {
    if (this.#keyConcurrency !== 0 && key !== undefined) increment(this.#active, key);
  }

  /** A task of `key` stopped running: its key slot is free, the key's next parked task goes back. */
  release(key: string | undefined): void {
    if (this.#keyConcurrency !== 0 && key !== undefined) this.#free(this.#active, key);
  }

  /**
   * A task taken from its priority FIFO: true when it may start now (holding its key slot);
   * false when it waits, parked under its key or for the rate limiter.
   */
  pass(rec: TaskRecord<unknown>): boolean {
    const key = rec.key;
    const capped = this.#keyConcurrency !== 0 && key !== undefined;
    const limitKey = this.#limiter ? (key ?? 'default') : undefined;
    if (
      (capped && (this.#active.get(key) ?? 0) >= this.#keyConcurrency) ||
      (limitKey !== undefined && (this.#admitting.get(limitKey) ?? 0) >= this.#maxConcurrent)
    ) {
      this.#queue.park(rec, key ?? 'default');
      return false;
    }
    if (capped) increment(this.#active, key);
    if (limitKey !== undefined) {
      increment(this.#admitting, limitKey);
      this.#admit(rec, limitKey);
      return false;
    }
    return true;
  }

  /** Waits for the rate limiter without holding a slot. */
  #admit(rec: TaskRecord<unknown>, limitKey: string): void {
    rec.place = ADMITTING;
    this.#waiting.add(rec);
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
        this.#waiting.delete(rec);
        rec.ensureExtras().admission = undefined;
        this.#free(this.#admitting, limitKey);
        if (rec.status === QUEUED) this.#queue.ready(rec);
        else this.release(rec.key);
        this.#ended(rec, false, undefined);
      },
      (error: unknown) => {
        this.#waiting.delete(rec);
        rec.ensureExtras().admission = undefined;
        this.#free(this.#admitting, limitKey);
        this.release(rec.key);
        this.#ended(rec, true, error);
      },
    );
  }

  /** One fewer of `key` in `counts`; the key's oldest parked task goes back to its FIFO. */
  #free(counts: Map<string, number>, key: string): void {
    const n = (counts.get(key) ?? 1) - 1;
    if (n > 0) counts.set(key, n);
    else counts.delete(key);
    this.#queue.unpark(key);
  }
}

function increment(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
