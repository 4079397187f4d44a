/**
 * Rate limiting: GCRA token buckets, one global and one per key, in this process or shared
 * through Redis.
 */
export { RateLimiter } from './rate-limiter.js';
export type { RateLimiterOptions, BucketOptions } from './options.js';
export type { RateDecision, AcquireOptions, RateLimiterStats } from './types.js';
