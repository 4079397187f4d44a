/**
 * The in-process store and the Redis store (lua/rate_limit_gcra.lua) give identical decisions
 * for random sequences of (time advance, key, cost). The script's test-only now argument replays
 * the same clock readings on the server.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { ManualClock } from '../../../src/internal/clock.js';
import { LocalRateStore } from '../../../src/rate-limit/local-store.js';
import { resolveBucket } from '../../../src/rate-limit/options.js';
import { GCRA_BATCH_SCRIPT, RedisRateStore } from '../../../src/rate-limit/redis-store.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

const bucketArb = fc.record({
  rate: fc.oneof(fc.integer({ min: 1, max: 200 }), fc.double({ min: 0.01, max: 50, noNaN: true })),
  intervalMs: fc.integer({ min: 1, max: 5_000 }),
  burst: fc.integer({ min: 1, max: 12 }),
});

const stepArb = fc.record({
  advanceMs: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 50 }),
    fc.integer({ min: 0, max: 5_000 }),
  ),
  key: fc.constantFrom('a', 'b', 'c', 'user:{x}', ''),
  cost: fc.integer({ min: 0, max: 12 }),
});

describeRedis('rate-limit store parity', () => {
  const redis = useRedis();

  it('local and Redis stores decide identically for any sequence and clock', async () => {
    const client = redis.client();
    const store = new RedisBackend({ redis: client, keyPrefix: redis.prefix });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.option(bucketArb, { nil: null }),
        fc.option(bucketArb, { nil: null }),
        fc.array(stepArb, { minLength: 1, maxLength: 40 }),
        // wall-clock-sized times, as the server's TIME would give
        fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }),
        async (globalOptions, perKeyOptions, steps, start) => {
          const global = globalOptions ? resolveBucket('global', globalOptions) : null;
          const perKey = perKeyOptions ? resolveBucket('perKey', perKeyOptions) : null;
          const clock = new ManualClock(start);
          const local = new LocalRateStore(clock);
          const remote = new RedisRateStore(store, `parity-${run++}`, () => clock.now());
          const maxCost = Math.min(global?.burst ?? Infinity, perKey?.burst ?? Infinity);
          for (const step of steps) {
            clock.advance(step.advanceMs);
            const cost = Math.min(step.cost, maxCost);
            const expected = local.decide(step.key, cost, global, perKey);
            const actual = await remote.decide(step.key, cost, global, perKey);
            expect(actual).toEqual(expected);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('batched concurrent decisions equal the same decisions made one by one, in arrival order', async () => {
    const client = redis.client();
    const backend = new RedisBackend({ redis: client, keyPrefix: redis.prefix });
    let batches = 0;
    // count batch calls, so the property cannot pass without exercising the batch script
    const runner = {
      keyPrefix: backend.keyPrefix,
      runScript: (...a: Parameters<RedisBackend['runScript']>) => {
        if (a[0] === GCRA_BATCH_SCRIPT) batches++;
        return backend.runScript(...a);
      },
    };
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.option(bucketArb, { nil: null }),
        bucketArb,
        fc.array(fc.array(stepArb, { minLength: 1, maxLength: 12 }), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.integer({ min: 1_600_000_000_000, max: 2_000_000_000_000 }),
        async (globalOptions, perKeyOptions, bursts, start) => {
          const global = globalOptions ? resolveBucket('global', globalOptions) : null;
          const perKey = resolveBucket('perKey', perKeyOptions);
          const clock = new ManualClock(start);
          const local = new LocalRateStore(clock);
          const remote = new RedisRateStore(runner as never, `batch-${run++}`, () => clock.now());
          const maxCost = Math.min(global?.burst ?? Infinity, perKey.burst);
          for (const burst of bursts) {
            clock.advance(burst[0]!.advanceMs);
            const expected = burst.map((step) =>
              local.decide(step.key, Math.min(step.cost, maxCost), global, perKey),
            );
            const actual = await Promise.all(
              burst.map((step) =>
                remote.decide(step.key, Math.min(step.cost, maxCost), global, perKey),
              ),
            );
            expect(actual).toEqual(expected);
          }
        },
      ),
      { numRuns: 100 },
    );
    expect(batches).toBeGreaterThan(0);
  });
});
