import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, isConfigError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { DRAIN_BATCH, DRAIN_PASS_MS, DRAIN_STEP_MS } from '../../../src/rate-limit/local-store.js';
import { RateLimiter } from '../../../src/rate-limit/index.js';
import type { CacheService } from '../../../src/store/types.js';

function limiter(options: ConstructorParameters<typeof RateLimiter>[0] = {}) {
  const clock = new ManualClock(1_000);
  return { clock, limiter: new RateLimiter({ clock, ...options }) };
}

describe('RateLimiter options', () => {
  it('uses the documented defaults: 100/s global, 20/s per key, burst = rate', async () => {
    const { limiter: l } = limiter();
    const first = await l.tryAcquire('k');
    expect(first).toEqual({ allowed: true, retryAfterMs: 0, remaining: 19 });
    for (let i = 0; i < 19; i++) expect((await l.tryAcquire('k')).allowed).toBe(true);
    expect(await l.tryAcquire('k')).toEqual({ allowed: false, retryAfterMs: 50, remaining: 0 });
    // the global bucket (100) still has 80 tokens for other keys
    expect(await l.tryAcquire('other')).toEqual({ allowed: true, retryAfterMs: 0, remaining: 19 });
  });

  it.each([
    [{ nope: 1 }, 'nope'],
    [{ global: { rate: 0 } }, 'global.rate'],
    [{ global: { rate: -1 } }, 'global.rate'],
    [{ global: { rate: Number.NaN } }, 'global.rate'],
    [{ global: { rate: 10, burst: 1.5 } }, 'global.burst'],
    [{ global: { rate: 10, burst: 0 } }, 'global.burst'],
    [{ global: { rate: 10, intervalMs: 0 } }, 'global.intervalMs'],
    [{ global: { rate: 10, intervalMs: 2.5 } }, 'global.intervalMs'],
    [{ global: { rate: 10, extra: 1 } }, 'global.extra'],
    [{ global: true }, 'global'],
    [{ perKey: null }, 'perKey'],
    [{ perKey: { rate: 2_000_000 } }, 'perKey.rate,perKey.intervalMs'],
    [
      { perKey: { rate: 1, intervalMs: 2 ** 31, burst: 2 ** 30 } },
      'perKey.burst,perKey.rate,perKey.intervalMs',
    ],
    [{ overrides: [] }, 'overrides'],
    [{ overrides: { a: 5 } }, 'overrides["a"]'],
    [{ overrides: { a: { rate: 0 } } }, 'overrides["a"].rate'],
    [{ jitterMs: -1 }, 'jitterMs'],
    [{ name: 'has space' }, 'name'],
    [{ name: 'a{b}' }, 'name'],
    [{ clock: Date }, 'clock'],
    [{ random: 0.5 }, 'random'],
    [{ store: {} }, 'store'],
    [{ store: { mode: 'distributed' } }, 'store'],
  ])('rejects %j naming %s', (options, field) => {
    let caught: unknown;
    try {
      new RateLimiter(options as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).code).toBe('CONFIG_INVALID');
    expect((caught as ConfigError).field).toBe(field);
    expect((caught as Error).message).toContain('RateLimiter');
  });

  it('a single_node store keeps state in this process', async () => {
    const store = { mode: 'single_node' } as unknown as CacheService;
    const l = new RateLimiter({ store, perKey: { rate: 1 } });
    expect(l.distributed).toBe(false);
    expect((await l.tryAcquire('a')).allowed).toBe(true);
    expect((await l.tryAcquire('a')).allowed).toBe(false);
  });

  it('rejects a bad key or cost as a rejection, not a throw', async () => {
    const { limiter: l } = limiter();
    await expect(l.tryAcquire(42 as never)).rejects.toMatchObject({ field: 'key' });
    await expect(l.tryAcquire('k', 1.5)).rejects.toMatchObject({ field: 'cost' });
    await expect(l.tryAcquire('k', -1)).rejects.toMatchObject({ field: 'cost' });
    await expect(l.tryAcquire('k', Number.NaN)).rejects.toMatchObject({ field: 'cost' });
  });
});

describe('RateLimiter.tryAcquire (GCRA, fake clock)', () => {
  it('allows a full burst at once, then refills one token per emission interval', async () => {
    const { clock, limiter: l } = limiter({ global: false, perKey: { rate: 10, burst: 4 } });
    const remaining: number[] = [];
    for (let i = 0; i < 4; i++) {
      const d = await l.tryAcquire('k');
      expect(d.allowed).toBe(true);
      remaining.push(d.remaining);
    }
    expect(remaining).toEqual([3, 2, 1, 0]);
    expect(await l.tryAcquire('k')).toEqual({ allowed: false, retryAfterMs: 100, remaining: 0 });
    clock.advance(99);
    expect((await l.tryAcquire('k')).allowed).toBe(false);
    clock.advance(1);
    expect(await l.tryAcquire('k')).toEqual({ allowed: true, retryAfterMs: 0, remaining: 0 });
    // a long idle period refills to the burst, never beyond
    clock.advance(60_000);
    expect(await l.tryAcquire('k')).toEqual({ allowed: true, retryAfterMs: 0, remaining: 3 });
  });

  it('retryAfterMs is exact: denied 1 ms before it, allowed at it (fractional emission interval)', async () => {
    // 3 per second: 333.334 ms per token (rounded up to whole microseconds, never faster)
    const { clock, limiter: l } = limiter({ global: false, perKey: { rate: 3, burst: 3 } });
    for (let round = 0; round < 20; round++) {
      let d = await l.tryAcquire('k');
      while (d.allowed) d = await l.tryAcquire('k');
      const wait = d.retryAfterMs;
      expect(wait).toBeGreaterThan(0);
      expect(Number.isInteger(wait)).toBe(true);
      clock.advance(wait - 1);
      expect((await l.tryAcquire('k')).allowed).toBe(false);
      clock.advance(1);
      expect((await l.tryAcquire('k')).allowed).toBe(true);
    }
    // no drift: 3 tokens per 1000 ms over a long run (the rate is never exceeded)
    const { clock: c2, limiter: l2 } = limiter({ global: false, perKey: { rate: 3, burst: 1 } });
    let granted = 0;
    for (let t = 0; t < 30_000; t++) {
      if ((await l2.tryAcquire('k')).allowed) granted++;
      c2.advance(1);
    }
    expect(granted).toBe(90);
  });

  it('takes from the global and the per-key bucket together or not at all', async () => {
    const { clock, limiter: l } = limiter({
      global: { rate: 3, intervalMs: 1000, burst: 3 },
      perKey: { rate: 2, intervalMs: 1000, burst: 2 },
    });
    expect(await l.tryAcquire('a', 2)).toMatchObject({ allowed: true, remaining: 0 });
    // per-key 'a' is empty: denied, and the global token it would have used stays
    expect(await l.tryAcquire('a')).toEqual({ allowed: false, retryAfterMs: 500, remaining: 0 });
    expect(await l.tryAcquire('b')).toEqual({ allowed: true, retryAfterMs: 0, remaining: 0 });
    // global is empty: 'b' is denied, and its per-key token stays
    const denied = await l.tryAcquire('b');
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBe(334); // one global token: 333.334 ms
    clock.advance(334);
    expect(await l.tryAcquire('b')).toMatchObject({ allowed: true });
    // cost 2 when only the per-key bucket could pay it: nothing is taken
    clock.advance(10_000);
    expect(await l.tryAcquire('c', 2)).toMatchObject({ allowed: true });
    expect(await l.tryAcquire('d', 2)).toMatchObject({ allowed: false, remaining: 1 });
    expect(await l.tryAcquire('d', 1)).toMatchObject({ allowed: true });
  });

  it('retryAfterMs is the larger of the two buckets’ waits', async () => {
    const { clock, limiter: l } = limiter({
      global: { rate: 1, intervalMs: 1000, burst: 1 },
      perKey: { rate: 1, intervalMs: 5000, burst: 1 },
    });
    expect((await l.tryAcquire('a')).allowed).toBe(true);
    expect((await l.tryAcquire('a')).retryAfterMs).toBe(5000);
    expect((await l.tryAcquire('b')).retryAfterMs).toBe(1000);
    clock.advance(1000);
    expect((await l.tryAcquire('a')).retryAfterMs).toBe(4000);
    expect((await l.tryAcquire('b')).allowed).toBe(true);
  });

  it('a cost larger than a burst is an error at once, never a wait', async () => {
    const { limiter: l } = limiter({ global: { rate: 100, burst: 10 }, perKey: { rate: 5 } });
    const error = await l.tryAcquire('k', 6).catch((e: unknown) => e);
    expect(isConfigError(error)).toBe(true);
    expect((error as ConfigError).field).toBe('cost');
    expect((error as Error).message).toMatch(/burst \(5\) of the per-key bucket/);
    await expect(l.acquire('k', { cost: 11 })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/burst \(10\) of the global bucket/),
    });
    expect(l.stats().waiting).toBe(0);
    // exactly the burst is fine
    expect((await l.tryAcquire('k', 5)).allowed).toBe(true);
  });

  it('overrides replace the per-key bucket for their keys only', async () => {
    const { clock, limiter: l } = limiter({
      global: false,
      perKey: { rate: 2, burst: 2 },
      overrides: { slow: { rate: 1, intervalMs: 10_000, burst: 1 }, fast: { rate: 50 } },
    });
    expect((await l.tryAcquire('slow')).allowed).toBe(true);
    expect(await l.tryAcquire('slow')).toMatchObject({ allowed: false, retryAfterMs: 10_000 });
    for (let i = 0; i < 50; i++) expect((await l.tryAcquire('fast')).allowed).toBe(true);
    expect(await l.tryAcquire('fast')).toMatchObject({ allowed: false, retryAfterMs: 20 });
    expect((await l.tryAcquire('x', 2)).allowed).toBe(true);
    expect((await l.tryAcquire('x')).allowed).toBe(false);
    clock.advance(10_000);
    expect((await l.tryAcquire('slow')).allowed).toBe(true);
    // an override's burst bounds the cost for that key
    await expect(l.tryAcquire('slow', 2)).rejects.toMatchObject({ field: 'cost' });
  });

  it('perKey: false leaves only the global bucket (and overrides)', async () => {
    const { limiter: l } = limiter({
      global: { rate: 3 },
      perKey: false,
      overrides: { vip: { rate: 1 } },
    });
    expect((await l.tryAcquire('a')).allowed).toBe(true);
    expect((await l.tryAcquire('b')).allowed).toBe(true);
    expect((await l.tryAcquire('vip')).allowed).toBe(true);
    expect((await l.tryAcquire('c')).allowed).toBe(false);
    const none = new RateLimiter({ global: false, perKey: false });
    expect(await none.tryAcquire('z', 1_000_000)).toEqual({
      allowed: true,
      retryAfterMs: 0,
      remaining: Infinity,
    });
  });

  it('cost 0 reports what is left without taking anything', async () => {
    const { limiter: l } = limiter({ global: false, perKey: { rate: 5 } });
    await l.tryAcquire('k', 2);
    expect(await l.tryAcquire('k', 0)).toEqual({ allowed: true, retryAfterMs: 0, remaining: 3 });
    expect(await l.tryAcquire('k', 0)).toEqual({ allowed: true, retryAfterMs: 0, remaining: 3 });
  });

  it('fractional rates work (one token per 2 s)', async () => {
    const { clock, limiter: l } = limiter({ global: false, perKey: { rate: 0.5 } });
    expect((await l.tryAcquire('k')).allowed).toBe(true);
    expect((await l.tryAcquire('k')).retryAfterMs).toBe(2000);
    clock.advance(2000);
    expect((await l.tryAcquire('k')).allowed).toBe(true);
  });

  it('drops idle keys so memory stays bounded with many distinct keys', async () => {
    const { clock, limiter: l } = limiter({ global: false, perKey: { rate: 10, burst: 1 } });
    for (let i = 0; i < 20_000; i++) await l.tryAcquire(`key-${i}`);
    expect(l.stats().trackedKeys).toBeLessThanOrEqual(20_000);
    // every bucket is full again after 100 ms: each is the same as no entry and can go
    clock.advance(100);
    // traffic on one known key drains them too (two entries inspected every 8th call)
    for (let i = 0; i < 81_000; i++) {
      await l.tryAcquire('hot');
      clock.advance(100);
    }
    expect(l.stats().trackedKeys).toBeLessThanOrEqual(2);
    // a stream of one-off keys stays near the number active in one burst window
    for (let i = 0; i < 50_000; i++) {
      await l.tryAcquire(`once-${i}`);
      clock.advance(1);
    }
    // kept: keys whose bucket is not yet full (100 ms) or has been full for under a second,
    // about 1,100 of them; the sweep lags by a bounded amount
    expect(l.stats().trackedKeys).toBeLessThan(3_000);
  });

  describe('after a burst, with no call following', () => {
    afterEach(() => void vi.useRealTimers());

    it('drains idle keys on a timer, a bounded batch per tick, keeping live ones', () => {
      vi.useFakeTimers();
      const clock = new ManualClock(0);
      const l = new RateLimiter({ clock, global: false, perKey: { rate: 10, burst: 10 } });
      const KEYS = 100_000;
      for (let i = 0; i < KEYS; i++) void l.tryAcquire(`burst-${i}`);
      expect(l.stats().trackedKeys).toBe(KEYS);
      // each bucket is full 100 ms later; a second after that it may go
      clock.advance(1_100);
      void l.tryAcquire('live'); // a bucket still in use
      const before = l.stats().trackedKeys;
      vi.advanceTimersByTime(DRAIN_PASS_MS);
      // one tick: at most one batch inspected
      expect(before - l.stats().trackedKeys).toBeGreaterThan(0);
      expect(before - l.stats().trackedKeys).toBeLessThanOrEqual(DRAIN_BATCH);
      vi.advanceTimersByTime(DRAIN_STEP_MS);
      expect(before - l.stats().trackedKeys).toBeLessThanOrEqual(2 * DRAIN_BATCH);
      // the rest of the pass, a tick per DRAIN_STEP_MS
      vi.advanceTimersByTime(Math.ceil(KEYS / DRAIN_BATCH) * DRAIN_STEP_MS);
      expect(l.stats().trackedKeys).toBe(1);
      // the live key goes once it has been full for a second, and then no timer is left
      clock.advance(1_100);
      vi.advanceTimersByTime(DRAIN_PASS_MS);
      expect(l.stats().trackedKeys).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  it('counts allowed and throttled decisions', async () => {
    const { limiter: l } = limiter({ global: false, perKey: { rate: 2 } });
    await l.tryAcquire('k');
    await l.tryAcquire('k');
    await l.tryAcquire('k');
    expect(l.stats()).toMatchObject({ allowed: 2, throttled: 1, waits: 0, totalWaitMs: 0 });
  });
});
