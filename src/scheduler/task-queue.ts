/**
 * The tasks a scheduler holds before they run: one FIFO per priority (served highest first, or
 * by aged priority with `agingMs`), the line of tasks the rate limiter let through, and the
 * tasks parked under a key that cannot take more. A cancelled task stays where it is as a dead
 * entry, skipped when met and compacted away once dead entries outnumber the live ones.
 * @internal
 */
import { Deque } from '../internal/deque.js';
import {
  ADMITTING,
  IN_QUEUE,
  PARKED,
  QUEUED,
  READY,
  REMOVED,
  type TaskRecord,
} from './task-record.js';

/** A scheduler's waiting tasks. @internal */
export class TaskQueue {
  readonly #agingMs: number;
  readonly #levels: Deque<TaskRecord<unknown>>[] = [
    new Deque(),
    new Deque(),
    new Deque(),
    new Deque(),
  ];
  readonly #ready = new Deque<TaskRecord<unknown>>();
  readonly #parked = new Map<string, Deque<TaskRecord<unknown>>>();
  readonly #sizeByLevel = [0, 0, 0, 0];
  #size = 0;
  #deadEntries = 0;

  /** `agingMs` 0: strict priorities. */
  constructor(agingMs: number) {
    this.#agingMs = agingMs;
  }

  /** Tasks waiting to start: queued, parked, waiting for the rate limiter, or let through. */
  get size(): number {
    return this.#size;
  }

  /** Waiting tasks of priority `level` (0 low … 3 critical). */
  sizeAt(level: number): number {
    return this.#sizeByLevel[level]!;
  }

  /** Queues a new task at the back of its priority. */
  push(rec: TaskRecord<unknown>): void {
    this.#size++;
    this.#sizeByLevel[rec.priority]!++;
    this.#levels[rec.priority]!.push(rec);
  }

  /** Takes the first live task the rate limiter let through; it no longer counts as waiting. */
  takeReady(): TaskRecord<unknown> | undefined {
    while (this.#ready.size > 0) {
      const rec = this.#ready.shift()!;
      if (rec.status !== QUEUED) {
        this.#deadEntries--;
        continue;
      }
      this.leave(rec);
      return rec;
    }
    return undefined;
  }

  /**
   * Takes the next live task off its priority FIFO; it still counts as waiting until
   * {@link TaskQueue.leave} (or it is parked, or goes to the rate limiter).
   */
  next(): TaskRecord<unknown> | undefined {
    for (;;) {
      const level = this.#agingMs > 0 ? this.#agedLevel() : this.#topLevel();
      if (level < 0) return undefined;
      const rec = this.#levels[level]!.shift()!;
      if (rec.status !== QUEUED) {
        this.#deadEntries--;
        continue;
      }
      return rec;
    }
  }

  /** A task taken by {@link TaskQueue.next} starts, or fails without running: it stops waiting. */
  leave(rec: TaskRecord<unknown>): void {
    this.#size--;
    this.#sizeByLevel[rec.priority]!--;
  }

  /** Parks a task under `key` until {@link TaskQueue.unpark}. */
  park(rec: TaskRecord<unknown>, key: string): void {
    rec.place = PARKED;
    let parked = this.#parked.get(key);
    if (!parked) this.#parked.set(key, (parked = new Deque(4)));
    parked.push(rec);
  }

  /** The oldest live parked task of `key` goes back to the front of its priority FIFO. */
  unpark(key: string): void {
    const parked = this.#parked.get(key);
    if (!parked) return;
    while (parked.size > 0) {
      const rec = parked.shift()!;
      if (rec.status !== QUEUED) {
        this.#deadEntries--;
        continue;
      }
      rec.place = IN_QUEUE;
      this.#levels[rec.priority]!.unshift(rec);
      break;
    }
    if (parked.size === 0) this.#parked.delete(key);
  }

  /** The rate limiter let a task through: it waits for a slot, ahead of the FIFOs. */
  ready(rec: TaskRecord<unknown>): void {
    rec.place = READY;
    this.#ready.push(rec);
  }

  /**
   * A waiting task was cancelled: it stops waiting, and its entry (if it is still in a FIFO, the
   * ready line or parked) becomes dead. Call {@link TaskQueue.compactIfSparse} after.
   */
  remove(rec: TaskRecord<unknown>): void {
    this.leave(rec);
    if (rec.place !== ADMITTING && rec.place !== REMOVED) this.#deadEntries++;
  }

  /** Drops the dead entries when there are many and they outnumber the live ones. */
  compactIfSparse(): void {
    if (this.#deadEntries > 1024 && this.#deadEntries > this.#size) this.#compact();
  }

  /**
   * Empties every FIFO, the ready line and the parked tasks, then calls `each` for every live
   * task taken out (marked removed; it still counts as waiting until `each` removes it).
   */
  drain(each: (rec: TaskRecord<unknown>) => void): void {
    const waiting: TaskRecord<unknown>[] = [];
    for (const queue of [...this.#levels, this.#ready, ...this.#parked.values()]) {
      queue.filterInPlace((record) => {
        if (record.status === QUEUED) waiting.push(record);
        return false;
      });
    }
    this.#deadEntries = 0;
    for (const record of waiting) {
      record.place = REMOVED;
      each(record);
    }
  }

  #topLevel(): number {
    for (let level = 3; level >= 0; level--) if (this.#levels[level]!.size > 0) return level;
    return -1;
  }

  /** Highest effective priority (level + waited / agingMs); ties go to the oldest. */
  #agedLevel(): number {
    const now = performance.now();
    let best = -1;
    let bestEff = -1;
    let bestAt = Infinity;
    for (let level = 3; level >= 0; level--) {
      const queue = this.#levels[level]!;
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

  #compact(): void {
    const keep = (record: TaskRecord<unknown>): boolean => record.status === QUEUED;
    for (const queue of this.#levels) queue.filterInPlace(keep);
    this.#ready.filterInPlace(keep);
    for (const [key, queue] of this.#parked) {
      queue.filterInPlace(keep);
      if (queue.size === 0) this.#parked.delete(key);
    }
    this.#deadEntries = 0;
  }
}
