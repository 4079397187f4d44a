import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RetryPolicy } from '../../../src/index.js';

describe('RetryPolicy delays (property)', () => {
  it('every delay is within [cap × (1 - j), cap × (1 + j)], at least the capped hint, and below 2^31', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.double({ min: 0, max: 0.99, noNaN: true }),
        fc.integer({ min: 1, max: 60 }),
        fc.option(fc.integer({ min: 0, max: 10 ** 7 }), { nil: undefined }),
        (initialDelayMs, extra, multiplier, jitter, n, hint) => {
          const maxDelayMs = Math.min(initialDelayMs + extra, 2 ** 31 - 1);
          const policy = new RetryPolicy({
            initialDelayMs,
            maxDelayMs,
            multiplier,
            jitter,
            maxRetryAfterMs: 60_000,
          });
          const cap = Math.min(initialDelayMs * multiplier ** (n - 1), maxDelayMs);
          const d = policy.delayFor(n, hint === undefined ? undefined : { retryAfterMs: hint });
          expect(d).toBeLessThanOrEqual(2 ** 31 - 1);
          expect(Number.isInteger(d)).toBe(true);
          const low = Math.floor(cap * (1 - jitter));
          const high = Math.ceil(cap * (1 + jitter));
          const floor = hint === undefined ? 0 : Math.min(hint, 60_000);
          expect(d).toBeGreaterThanOrEqual(Math.max(low, Math.round(floor)) - 1);
          expect(d).toBeLessThanOrEqual(Math.max(high, floor) + 1);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
