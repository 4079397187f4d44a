/**
 * The in-process GCRA store. Each bucket is one number, its theoretical arrival time (TAT) in
 * integer microseconds; a bucket whose TAT is at or before now is full and is the same as no
 * entry at all, so entries that have been full for a second are deleted:
 *
 * - by an incremental sweep on the calls themselves: every new entry, and every 8th decision,
 *   also inspects two old entries, which keeps the map near the number of keys active within
 *   one burst window plus one second while traffic flows;
 * - by a drain timer while the map holds entries, so that keys left behind by a burst go even
 *   when no call follows: a pass over the map every 250 ms, in ticks of at most 4,096 entries
 *   (about a millisecond of work) 1 ms apart. The timer is unref'd and stops when the map is
 *   empty or cleared.
 *
 * lua/rate_limit_gcra.lua is the same algorithm for Redis; keep the two in step.
 * @internal
 */
import { unrefTimeout, type Clock } from '../internal/clock.js';
import type { ResolvedBucket } from './options.js';
import type { RateDecision, RateStore } from './types.js';

/** Entries inspected by the sweep per new key. Two per insert keeps the map bounded. */
const SWEEP_STEP = 2;
/**
 * How long a full bucket is kept before the sweep drops it (µs). A full bucket is the same as
 * none, so this changes no decision; it only spares hot keys that refill between calls from
 * being deleted and re-inserted over and over.
 */
const IDLE_GRACE_US = 1_000_000;

/** Entries the drain timer inspects per tick. */
export const DRAIN_BATCH = 4096;
/** Delay between the ticks of one drain pass, in ms. */
export const DRAIN_STEP_MS = 1;
/** Delay between drain passes, in ms. */
export const DRAIN_PASS_MS = 250;

/** One per-key bucket: its TAT in µs, updated in place (one lookup, no allocation per call). */
interface Cell {
  tat: number;
}

/** In-process bucket state. @internal */
export class LocalRateStore implements RateStore {
  readonly #clock: Clock;
  #globalTat = -Infinity;
  readonly #cells = new Map<string, Cell>();
  #sweep: MapIterator<[string, Cell]> | null = null;
  #calls = 0;
  #drainTimer: ReturnType<typeof setTimeout> | null = null;
  /** Where the drain pass stands (its own cursor: the call-driven sweep wraps around freely). */
  #drainCursor: MapIterator<[string, Cell]> | null = null;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#cells.size;
  }

  /** The current time in integer microseconds. */
  nowUs(): number {
    return Math.floor(this.#clock.now() * 1000);
  }

  decide(
    key: string,
    cost: number,
    global: ResolvedBucket | null,
    perKey: ResolvedBucket | null,
  ): RateDecision {
    const now = this.nowUs();
    // besides the sweep on every insert, a slow one on every 8th call drains idle keys when
    // the traffic moves to keys already known
    if ((++this.#calls & 7) === 0 && this.#cells.size > 0) this.#sweepSome(now);
    let allowed = true;
    let retryUs = 0;
    let available = Infinity;
    let globalBase = 0;
    let keyBase = 0;
    let cell: Cell | undefined;

    if (global !== null) {
      globalBase = this.#globalTat > now ? this.#globalTat : now;
      const a = Math.max(
        0,
        Math.floor((global.toleranceUs - (globalBase - now)) / global.emissionUs),
      );
      if (a < available) available = a;
      if (cost > a) {
        allowed = false;
        const r = globalBase + cost * global.emissionUs - global.toleranceUs - now;
        if (r > retryUs) retryUs = r;
      }
    }
    if (perKey !== null) {
      cell = this.#cells.get(key);
      keyBase = cell !== undefined && cell.tat > now ? cell.tat : now;
      const a = Math.max(0, Math.floor((perKey.toleranceUs - (keyBase - now)) / perKey.emissionUs));
      if (a < available) available = a;
      if (cost > a) {
        allowed = false;
        const r = keyBase + cost * perKey.emissionUs - perKey.toleranceUs - now;
        if (r > retryUs) retryUs = r;
      }
    }

    if (!allowed) {
      return { allowed: false, retryAfterMs: Math.ceil(retryUs / 1000), remaining: available };
    }
    if (cost > 0) {
      if (global !== null) this.#globalTat = globalBase + cost * global.emissionUs;
      if (perKey !== null) {
        const tat = keyBase + cost * perKey.emissionUs;
        if (cell !== undefined) {
          cell.tat = tat;
        } else {
          this.#cells.set(key, { tat });
          // the map grows only here, so sweeping here bounds it
          this.#sweepSome(now);
          if (this.#drainTimer === null) this.#scheduleDrain(DRAIN_PASS_MS);
        }
      }
    }
    return { allowed: true, retryAfterMs: 0, remaining: available - cost };
  }

  /** Drops up to SWEEP_STEP idle entries, resuming where the last sweep stopped. */
  #sweepSome(now: number): void {
    let sweep = this.#sweep ?? this.#cells.entries();
    for (let i = 0; i < SWEEP_STEP; i++) {
      const next = sweep.next();
      if (next.done === true) {
        sweep = this.#cells.entries();
        // restart at most once per call so an all-busy map is not scanned twice
        if (i > 0) break;
        continue;
      }
      if (next.value[1].tat + IDLE_GRACE_US <= now) this.#cells.delete(next.value[0]);
    }
    this.#sweep = sweep;
  }

  /** Forgets every bucket (all become full). */
  clear(): void {
    this.#globalTat = -Infinity;
    this.#cells.clear();
    this.#sweep = null;
    this.#drainCursor = null;
    if (this.#drainTimer !== null) clearTimeout(this.#drainTimer);
    this.#drainTimer = null;
  }

  #scheduleDrain(delayMs: number): void {
    this.#drainTimer = unrefTimeout(() => this.#drain(), delayMs);
  }

  /** One tick of a drain pass: drops idle entries among the next DRAIN_BATCH. */
  #drain(): void {
    this.#drainTimer = null;
    const now = this.nowUs();
    const sweep = this.#drainCursor ?? this.#cells.entries();
    let passDone = false;
    for (let i = 0; i < DRAIN_BATCH; i++) {
      const next = sweep.next();
      if (next.done === true) {
        passDone = true;
        break;
      }
      if (next.value[1].tat + IDLE_GRACE_US <= now) this.#cells.delete(next.value[0]);
    }
    this.#drainCursor = passDone ? null : sweep;
    if (this.#cells.size > 0) this.#scheduleDrain(passDone ? DRAIN_PASS_MS : DRAIN_STEP_MS);
  }
}
