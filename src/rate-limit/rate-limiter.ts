/**
 * RateLimiter: GCRA token buckets (one global, one per key), consumed together or not at all.
 * This file holds its calls, the checks of their arguments and the decisions taken at once; the
 * calls that wait are queued in its wait lines (wait-lines.ts).
 */
import { ConfigError } from '../errors.js';
import { abortError } from '../internal/abort.js';
import { invalid, optionalNumber, optionalSignal, readOptions } from '../internal/validate.js';
import type { ScriptRunner } from '../store/types.js';
import { LocalRateStore } from './local-store.js';
import { meterRateLimiter } from './metered.js';
import type { RateLimiterOptions, ResolvedBucket, ResolvedRateLimiterOptions } from './options.js';
import { resolveRateLimiterOptions } from './options.js';
import { RedisRateStore } from './redis-store.js';
import type { AcquireOptions, RateDecision, RateLimiterStats, RateStore } from './types.js';
import { WaitLines, waitTooLong, type RateCounters } from './wait-lines.js';

const RESOLVED: Promise<void> = Promise.resolve();
const TRY = 'RateLimiter.tryAcquire';
const ACQUIRE = 'RateLimiter.acquire';

/**
 * A rate limiter with one global token bucket and one bucket per key (GCRA, the algorithm of
 * Rust's `governor`). A call takes its tokens from both buckets together or from neither.
 *
 * State lives in this process, or in Redis when `store` is a distributed CacheService: every
 * limiter with the same `name` on that Redis then shares one budget, decided by one Lua script
 * per call with time from the Redis server.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({ global: { rate: 100 }, perKey: { rate: 20, burst: 5 } });
 * await limiter.acquire('api.example.com', { signal, maxWaitMs: 5_000 });
 * const res = await fetch('https://api.example.com/items');
 * ```
 */
export class RateLimiter {
  readonly #options: ResolvedRateLimiterOptions;
  readonly #local: LocalRateStore | null;
  readonly #store: RateStore;
  readonly #counters: RateCounters = {
    allowed: 0,
    throttled: 0,
    waits: 0,
    totalWaitMs: 0,
    rejected: 0,
    cancelled: 0,
    waiting: 0,
  };
  readonly #lines: WaitLines;

  /**
   * @param options - buckets, jitter and store; see {@link RateLimiterOptions}.
   * @throws ConfigError (code `CONFIG_INVALID`) naming the field when an option is invalid.
   */
  constructor(options?: RateLimiterOptions) {
    this.#options = resolveRateLimiterOptions(options);
    const store = this.#options.store;
    if (store !== undefined && store.mode === 'distributed') {
      this.#local = null;
      this.#store = new RedisRateStore(store as unknown as ScriptRunner, this.#options.name);
    } else {
      this.#local = new LocalRateStore(this.#options.clock);
      this.#store = this.#local;
    }
    this.#lines = new WaitLines(this.#options, this.#store, this.#counters);
    if (this.#options.metrics) meterRateLimiter(this, this.#options.metrics, this.#options.name);
  }

  /** Whether the budget is shared through a distributed store (Redis). */
  get distributed(): boolean {
    return this.#local === null;
  }

  /**
   * Takes `cost` tokens from the global bucket and from `key`'s bucket if both have them, else
   * takes none; never waits.
   *
   * @param key - the bucket key (for example a host or plugin id).
   * @param cost - tokens to take (integer >= 0). @defaultValue 1
   * @returns the decision: `allowed`, `retryAfterMs` (integer ms, 0 when allowed), `remaining`.
   * @throws ConfigError (as a rejection) when `cost` is not an integer >= 0 or is larger than the
   *   burst of a bucket it draws from (it could never be allowed).
   * @throws BackendUnavailableError or ScriptError (as a rejection) from a Redis store.
   * @example
   * ```ts
   * const { allowed, retryAfterMs } = await limiter.tryAcquire('tenant-42', 2);
   * if (!allowed) return reply(429, { retryAfterMs });
   * ```
   */
  tryAcquire(key: string, cost = 1): Promise<RateDecision> {
    let perKey: ResolvedBucket | null;
    try {
      perKey = this.#check(TRY, key, cost);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#local !== null) {
      const decision = this.#local.decide(key, cost, this.#options.global, perKey);
      if (decision.allowed) this.#counters.allowed++;
      else this.#counters.throttled++;
      return Promise.resolve(decision);
    }
    let pending: Promise<RateDecision>;
    try {
      pending = this.#store.decide(
        key,
        cost,
        this.#options.global,
        perKey,
      ) as Promise<RateDecision>;
    } catch (error) {
      return Promise.reject(error);
    }
    return pending.then((decision) => {
      if (decision.allowed) this.#counters.allowed++;
      else this.#counters.throttled++;
      return decision;
    });
  }

  /**
   * Waits until `cost` tokens can be taken from the global bucket and from `key`'s bucket, then
   * takes them. Waiters of one key are served first come, first served; each wake-up adds a
   * random delay of up to `jitterMs`. One timer serves every waiter.
   *
   * @param key - the bucket key.
   * @param options - `cost` (default 1), `signal`, `maxWaitMs` (default Infinity).
   * @throws ConfigError (as a rejection) when `cost` is invalid or larger than a bucket's burst.
   * @throws RateLimitedError (code `RATE_LIMITED`, `retryAfterMs` in its context) when the wait
   *   would exceed `maxWaitMs`.
   * @throws the signal's reason when it is an Error, else TaskCancelledError, when `signal`
   *   aborts first.
   * @example
   * ```ts
   * await limiter.acquire(host, { signal: AbortSignal.timeout(10_000), maxWaitMs: 2_000 });
   * ```
   */
  acquire(key: string, options?: AcquireOptions): Promise<void> {
    let cost: number;
    let signal: AbortSignal | undefined;
    let maxWaitMs: number;
    let perKey: ResolvedBucket | null;
    try {
      const raw = readOptions(ACQUIRE, options, ['cost', 'signal', 'maxWaitMs']);
      cost = raw.cost ?? 1;
      signal = optionalSignal(ACQUIRE, 'signal', raw.signal);
      maxWaitMs = optionalNumber(ACQUIRE, 'maxWaitMs', raw.maxWaitMs, Infinity, {
        min: 0,
        allowInfinity: true,
      });
      perKey = this.#check(ACQUIRE, key, cost);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#acquire(key, cost, perKey, signal, maxWaitMs);
  }

  /**
   * {@link RateLimiter.acquire} of one token with no wait limit, without the checks of its
   * arguments: for callers inside mocra that pass a key string and an AbortSignal they hold.
   * `undefined` when the token was taken at once (nothing to wait for).
   * @internal
   */
  _acquireOne(key: string, signal: AbortSignal | undefined): Promise<void> | undefined {
    let perKey: ResolvedBucket | null;
    try {
      perKey = this.#check(ACQUIRE, key, 1);
    } catch (error) {
      return Promise.reject(error);
    }
    const wait = this.#acquire(key, 1, perKey, signal, Infinity);
    return wait === RESOLVED ? undefined : wait;
  }

  #acquire(
    key: string,
    cost: number,
    perKey: ResolvedBucket | null,
    signal: AbortSignal | undefined,
    maxWaitMs: number,
  ): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal, 'rate limit wait was aborted'));

    let firstRetryMs = -1;
    if (this.#local !== null && !this.#lines.has(key)) {
      // nobody waits for this key: decide at once, and queue only when throttled
      const decision = this.#local.decide(key, cost, this.#options.global, perKey);
      if (decision.allowed) {
        this.#counters.allowed++;
        return RESOLVED;
      }
      this.#counters.throttled++;
      if (decision.retryAfterMs > maxWaitMs) {
        this.#counters.rejected++;
        return Promise.reject(waitTooLong(key, cost, maxWaitMs, decision.retryAfterMs));
      }
      firstRetryMs = decision.retryAfterMs;
    }
    return this.#lines.wait(key, cost, perKey, signal, maxWaitMs, firstRetryMs);
  }

  /**
   * The limiter's counters since it was created.
   *
   * @example
   * ```ts
   * const s = limiter.stats();
   * console.log(`${s.throttled} throttled, ${s.totalWaitMs / Math.max(1, s.waits)} ms mean wait`);
   * ```
   */
  stats(): RateLimiterStats {
    const c = this.#counters;
    return {
      allowed: c.allowed,
      throttled: c.throttled,
      waits: c.waits,
      totalWaitMs: c.totalWaitMs,
      rejected: c.rejected,
      cancelled: c.cancelled,
      waiting: c.waiting,
      trackedKeys: this.#store.size,
    };
  }

  /** Validates a call's key and cost; returns the key's bucket. */
  #check(where: string, key: string, cost: number): ResolvedBucket | null {
    if (typeof key !== 'string') invalid(where, 'key', 'a string', key);
    if (!Number.isInteger(cost) || cost < 0) invalid(where, 'cost', 'an integer >= 0', cost);
    const overrides = this.#options.overrides;
    const perKey =
      overrides.size > 0 ? (overrides.get(key) ?? this.#options.perKey) : this.#options.perKey;
    if (cost > 1) {
      const global = this.#options.global;
      if (global !== null && cost > global.burst)
        this.#neverFits(where, key, cost, 'global', global);
      if (perKey !== null && cost > perKey.burst)
        this.#neverFits(where, key, cost, 'per-key', perKey);
    }
    return perKey;
  }

  #neverFits(
    where: string,
    key: string,
    cost: number,
    which: string,
    bucket: ResolvedBucket,
  ): never {
    throw new ConfigError(
      `${where}: \`cost\` ${cost} is more than the burst (${bucket.burst}) of the ${which} bucket of key ${JSON.stringify(key)}, so it could never be allowed`,
      { context: { field: 'cost', key, value: cost, burst: bucket.burst } },
    );
  }
}
