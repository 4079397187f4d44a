/**
 * The in-process GCRA against an independent reference model: a credit bucket in exact BigInt
 * arithmetic (credit grows with elapsed time up to the tolerance; a call of cost n needs
 * n emission intervals of credit). Same decisions, retry-after and remaining, for any sequence.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/internal/clock.js';
import {
  RateLimiter,
  type BucketOptions,
  type RateDecision,
} from '../../../src/rate-limit/index.js';

interface ModelBucket {
  emission: bigint;
  tolerance: bigint;
  credit: Map<string, bigint>;
  last: Map<string, bigint>;
}

function modelBucket(options: Required<BucketOptions>): ModelBucket {
  const scaled = BigInt(options.intervalMs) * 1000n;
  const rate = BigInt(options.rate);
  const emission = (scaled + rate - 1n) / rate; // rounded up: never faster than configured
  return {
    emission,
    tolerance: emission * BigInt(options.burst),
    credit: new Map(),
    last: new Map(),
  };
}

class ReferenceModel {
  constructor(
    readonly global: ModelBucket | null,
    readonly perKey: ModelBucket | null,
  ) {}

  #creditAt(bucket: ModelBucket, id: string, now: bigint): bigint {
    const last = bucket.last.get(id);
    if (last === undefined) return bucket.tolerance;
    const credit = bucket.credit.get(id)! + (now - last);
    return credit > bucket.tolerance ? bucket.tolerance : credit;
  }

  decide(key: string, cost: number, nowMs: number): RateDecision {
    const now = BigInt(nowMs) * 1000n;
    const n = BigInt(cost);
    const parts: [ModelBucket, string][] = [];
    if (this.global) parts.push([this.global, '']);
    if (this.perKey) parts.push([this.perKey, key]);
    if (parts.length === 0) return { allowed: true, retryAfterMs: 0, remaining: Infinity };
    let allowed = true;
    let retry = 0n;
    let available: bigint | null = null;
    for (const [bucket, id] of parts) {
      const credit = this.#creditAt(bucket, id, now);
      const tokens = credit / bucket.emission;
      if (available === null || tokens < available) available = tokens;
      const need = n * bucket.emission;
      if (credit < need) {
        allowed = false;
        if (need - credit > retry) retry = need - credit;
      }
    }
    if (allowed) {
      for (const [bucket, id] of parts) {
        bucket.credit.set(id, this.#creditAt(bucket, id, now) - n * bucket.emission);
        bucket.last.set(id, now);
      }
      return { allowed: true, retryAfterMs: 0, remaining: Number(available! - n) };
    }
    return {
      allowed: false,
      retryAfterMs: Number((retry + 999n) / 1000n),
      remaining: Number(available!),
    };
  }
}

const bucketArb = fc.record({
  rate: fc.integer({ min: 1, max: 200 }),
  intervalMs: fc.integer({ min: 1, max: 5_000 }),
  burst: fc.integer({ min: 1, max: 12 }),
});

const stepArb = fc.record({
  advanceMs: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 50 }),
    fc.integer({ min: 0, max: 5_000 }),
  ),
  key: fc.constantFrom('a', 'b', 'c', 'd'),
  cost: fc.integer({ min: 0, max: 12 }),
});

describe('local GCRA vs reference model', () => {
  it('gives the same decision, retryAfterMs and remaining for any sequence', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.option(bucketArb, { nil: null }),
        fc.option(bucketArb, { nil: null }),
        fc.array(stepArb, { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 0, max: 2e12 }),
        async (global, perKey, steps, start) => {
          const clock = new ManualClock(start);
          const limiter = new RateLimiter({
            clock,
            global: global ?? false,
            perKey: perKey ?? false,
          });
          const model = new ReferenceModel(
            global ? modelBucket(global) : null,
            perKey ? modelBucket(perKey) : null,
          );
          const maxCost = Math.min(global?.burst ?? Infinity, perKey?.burst ?? Infinity);
          for (const step of steps) {
            clock.advance(step.advanceMs);
            if (step.cost > maxCost) {
              await expect(limiter.tryAcquire(step.key, step.cost)).rejects.toMatchObject({
                code: 'CONFIG_INVALID',
              });
              continue;
            }
            const actual = await limiter.tryAcquire(step.key, step.cost);
            expect(actual).toEqual(model.decide(step.key, step.cost, clock.now()));
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
