/**
 * Reports a rate limiter's decisions and waits to a {@link Metrics}, around its public calls:
 * nothing inside the limiter's decision path changes, and a limiter without `metrics` is not
 * wrapped at all.
 * @internal
 */
import { isMocraError } from '../errors.js';
import { MetricName } from '../observe/metric-names.js';
import type { Metrics } from '../observe/metrics.js';
import type { RateLimiter } from './rate-limiter.js';

/** Wraps `acquire` and `tryAcquire` of one limiter instance to report to `metrics`. */
export function meterRateLimiter(limiter: RateLimiter, metrics: Metrics, name: string): void {
  const labels = { limiter: name };
  const decided = (decision: string): void =>
    metrics.increment(MetricName.RATE_LIMIT_DECISION, { limiter: name, decision });
  const acquire = limiter.acquire.bind(limiter);
  const tryAcquire = limiter.tryAcquire.bind(limiter);
  Object.defineProperty(limiter, 'acquire', {
    configurable: true,
    value: (...args: Parameters<RateLimiter['acquire']>): Promise<void> => {
      const waitsBefore = limiter.stats().waits;
      const started = performance.now();
      const pending = acquire(...args);
      // in process, a call that has to wait is queued (and counted) at once; a distributed call
      // always takes a round trip: one that resolves within 1 ms counts as allowed at once
      const queued = limiter.stats().waits !== waitsBefore;
      const distributed = limiter.distributed;
      return pending.then(
        () => {
          const ms = performance.now() - started;
          if (queued || (distributed && ms >= 1)) {
            decided('waited');
            metrics.observe(MetricName.RATE_LIMIT_WAIT, ms, labels);
          } else {
            decided('allowed');
          }
        },
        (error: unknown) => {
          if (isMocraError(error, 'RATE_LIMITED')) decided('rejected');
          throw error;
        },
      );
    },
  });
  Object.defineProperty(limiter, 'tryAcquire', {
    configurable: true,
    value: (...args: Parameters<RateLimiter['tryAcquire']>) =>
      tryAcquire(...args).then((decision) => {
        decided(decision.allowed ? 'allowed' : 'throttled');
        return decision;
      }),
  });
}
