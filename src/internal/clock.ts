/**
 * Time sources and timers. Every primitive takes an optional {@link Clock} so tests can drive
 * time by hand. Timers are made unref'd here; a primitive refs one only while a caller waits on it.
 * @internal
 */

/** A source of the current time in milliseconds. */
export interface Clock {
  /** Current time in milliseconds. Must never go backwards for monotonic uses. */
  now(): number;
}

/** Wall-clock time (`Date.now()`); used for TTLs that must match other processes. */
export const systemClock: Clock = Object.freeze({ now: () => Date.now() });

/** Monotonic time (`performance.now()`); used for durations and timeouts. */
export const monotonicClock: Clock = Object.freeze({ now: () => performance.now() });

let coarseValid = false;
let coarseValue = 0;
let coarseReads = 0;
/** Reads served from one value before the clock is read again, even within one synchronous run. */
const COARSE_MAX_READS = 1024;
const expireCoarse = (): void => {
  coarseValid = false;
};

/**
 * Monotonic time read at most about once per millisecond: a read within a millisecond of the last
 * real one (and within {@link COARSE_MAX_READS} reads of it) returns the same value. One unref'd
 * 1 ms timer, shared by every user, marks the value old; none is pending while nobody reads.
 * Hot paths that check expiry on every call (PluginCache.get) use it; like lru-cache's
 * `ttlResolution`, it trades sub-millisecond expiry precision for the cost of a clock read.
 */
export const coarseMonotonicClock: Clock = Object.freeze({
  now(): number {
    if (coarseValid && ++coarseReads < COARSE_MAX_READS) return coarseValue;
    coarseReads = 0;
    coarseValue = performance.now();
    if (!coarseValid) {
      coarseValid = true;
      setTimeout(expireCoarse, 1).unref?.();
    }
    return coarseValue;
  },
});

/** The largest delay `setTimeout` accepts (2^31 - 1 ms); longer delays overflow to 1 ms. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** `setTimeout` that never keeps the process alive and clamps the delay to what timers accept. */
export function unrefTimeout(fn: () => void, delayMs: number): ReturnType<typeof setTimeout> {
  const delay = Math.min(Math.max(0, Math.ceil(delayMs)), MAX_TIMER_DELAY_MS);
  const timer = setTimeout(fn, delay);
  timer.unref?.();
  return timer;
}

/** `setInterval` that never keeps the process alive. */
export function unrefInterval(fn: () => void, periodMs: number): ReturnType<typeof setInterval> {
  const period = Math.min(Math.max(1, Math.ceil(periodMs)), MAX_TIMER_DELAY_MS);
  const timer = setInterval(fn, period);
  timer.unref?.();
  return timer;
}

/**
 * A clock moved by hand, for tests and simulations.
 * @internal
 */
export class ManualClock implements Clock {
  #now: number;
  constructor(start = 0) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance: ms must be >= 0, got ${ms}`);
    this.#now += ms;
    return this.#now;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}
