/**
 * acquire under random arrivals (fake timers): every call is granted, calls of one key are
 * granted in the order they were made, the grants never exceed the buckets (replaying them
 * through a fresh limiter's tryAcquire at the same instants allows every one), and no grant
 * comes later than needed (a waiting head was still refused one millisecond before its grant).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../../src/internal/clock.js';
import { RateLimiter } from '../../../src/rate-limit/index.js';

const clock = { now: () => Date.now() };

const bucketArb = fc.record({
  rate: fc.integer({ min: 1, max: 50 }),
  intervalMs: fc.integer({ min: 10, max: 1_000 }),
  burst: fc.integer({ min: 1, max: 4 }),
});

const callArb = fc.record({
  gapMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 200 })),
  key: fc.constantFrom('a', 'b', 'c'),
  cost: fc.integer({ min: 0, max: 4 }),
});

describe('acquire ordering and rate', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('grants every call, FIFO per key, never beyond the buckets', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.option(bucketArb, { nil: null }),
        bucketArb,
        fc.array(callArb, { minLength: 1, maxLength: 30 }),
        async (global, perKey, calls) => {
          vi.useFakeTimers({ now: 10_000_000 });
          try {
            const options = { global: global ?? (false as const), perKey };
            const limiter = new RateLimiter({ clock, ...options });
            const maxCost = Math.min(global?.burst ?? Infinity, perKey.burst);
            const grants: { i: number; at: number; key: string; cost: number }[] = [];
            const calledAt: number[] = [];
            const pending: Promise<void>[] = [];
            for (const [i, call] of calls.entries()) {
              await vi.advanceTimersByTimeAsync(call.gapMs);
              const cost = Math.min(call.cost, maxCost);
              calledAt.push(Date.now());
              pending.push(
                limiter.acquire(call.key, { cost }).then(() => {
                  grants.push({ i, at: Date.now(), key: call.key, cost });
                }),
              );
            }
            await vi.advanceTimersByTimeAsync(10 * 60_000);
            await Promise.all(pending);
            expect(grants).toHaveLength(calls.length);
            for (const key of ['a', 'b', 'c']) {
              const order = grants.filter((g) => g.key === key).map((g) => g.i);
              expect(order).toEqual([...order].sort((x, y) => x - y));
            }
            const replayClock = new ManualClock(0);
            const replay = new RateLimiter({ clock: replayClock, ...options });
            const lastGrant = new Map<string, number>();
            for (const g of grants) {
              // not late either: a call that waited, as head of its key, was refused 1 ms earlier
              const prev = lastGrant.get(g.key) ?? -Infinity;
              if (g.cost > 0 && g.at > calledAt[g.i]! && g.at > prev) {
                // the state one millisecond earlier: the grants made before then
                const probeClock = new ManualClock(0);
                const probe = new RateLimiter({ clock: probeClock, ...options });
                for (const h of grants) {
                  if (h.at >= g.at) continue;
                  probeClock.set(h.at);
                  await probe.tryAcquire(h.key, h.cost);
                }
                probeClock.set(g.at - 1);
                expect((await probe.tryAcquire(g.key, 0)).remaining).toBeLessThan(g.cost);
              }
              replayClock.set(g.at);
              expect((await replay.tryAcquire(g.key, g.cost)).allowed).toBe(true);
              lastGrant.set(g.key, g.at);
            }
            expect(limiter.stats()).toMatchObject({ allowed: calls.length, waiting: 0 });
          } finally {
            vi.useRealTimers();
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
