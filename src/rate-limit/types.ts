/**
 * Result and statistics types of the rate limiter.
 */
import type { ResolvedBucket } from './options.js';

/**
 * The answer of {@link RateLimiter.tryAcquire}.
 *
 * @example
 * ```ts
 * const d = await limiter.tryAcquire('api.example.com');
 * if (!d.allowed) res.setHeader('Retry-After', Math.ceil(d.retryAfterMs / 1000));
 * ```
 */
export interface RateDecision {
  /** Whether the tokens were taken (from every bucket) — false means none were taken. */
  allowed: boolean;
  /**
   * When not allowed: milliseconds (integer) after which the same call would be allowed, if no
   * one else takes tokens meanwhile. 0 when allowed.
   */
  retryAfterMs: number;
  /**
   * Tokens left in the tighter of the buckets consulted (integer >= 0): after this call when
   * allowed, available right now when not. `Infinity` when no bucket applies.
   */
  remaining: number;
}

/** Options of {@link RateLimiter.acquire}. */
export interface AcquireOptions {
  /** Tokens to take (integer >= 0, at most the burst of every bucket consulted). @defaultValue 1 */
  cost?: number;
  /** Aborts the wait: the promise rejects with the signal's reason (or a TaskCancelledError). */
  signal?: AbortSignal;
  /**
   * The longest the caller will wait, in milliseconds (finite >= 0 or Infinity). When the wait
   * would be longer, `acquire` rejects with a RateLimitedError at once (or at the deadline, when
   * it is queued behind others). @defaultValue Infinity
   */
  maxWaitMs?: number;
}

/**
 * Counters of a {@link RateLimiter}, since it was created.
 *
 * @example
 * ```ts
 * const { allowed, throttled, waits, totalWaitMs } = limiter.stats();
 * ```
 */
export interface RateLimiterStats {
  /** Grants: `tryAcquire` calls that were allowed plus `acquire` calls that got their tokens. */
  allowed: number;
  /** Refusals: `tryAcquire` calls that were not allowed plus `acquire` calls that could not go at once. */
  throttled: number;
  /** `acquire` calls that had to wait (queued behind others or for tokens), however they ended. */
  waits: number;
  /** Milliseconds spent waiting by `acquire` calls that then got their tokens. */
  totalWaitMs: number;
  /** `acquire` calls rejected because the wait would exceed their `maxWaitMs`. */
  rejected: number;
  /** `acquire` calls aborted by their signal while waiting. */
  cancelled: number;
  /** `acquire` calls waiting right now. */
  waiting: number;
  /** Keys whose in-process bucket state is held right now (0 with a distributed store). */
  trackedKeys: number;
}

/** Where bucket state lives: in this process or in Redis. @internal */
export interface RateStore {
  /** Consumes `cost` from both buckets together, or from neither. */
  decide(
    key: string,
    cost: number,
    global: ResolvedBucket | null,
    perKey: ResolvedBucket | null,
  ): RateDecision | Promise<RateDecision>;
  /** Keys held in memory. */
  readonly size: number;
}
