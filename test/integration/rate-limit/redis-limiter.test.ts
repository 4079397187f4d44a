/**
 * RateLimiter on a real Redis: several limiters (own clients, own clocks) share one budget,
 * decided by the server's clock.
 */
import { expect, it } from 'vitest';
import { RateLimitedError, TaskCancelledError } from '../../../src/errors.js';
import { RateLimiter, type RateLimiterOptions } from '../../../src/rate-limit/index.js';
import { GCRA_SCRIPT } from '../../../src/rate-limit/redis-store.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

describeRedis('RateLimiter with a Redis store', () => {
  const redis = useRedis();

  function pair(options: RateLimiterOptions) {
    const a = new RateLimiter({
      ...options,
      store: new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix }),
    });
    const b = new RateLimiter({
      ...options,
      store: new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix }),
    });
    return [a, b] as const;
  }

  it('two limiters on two clients share one per-key and one global budget', async () => {
    const [a, b] = pair({
      name: 'shared',
      global: { rate: 8, intervalMs: 60_000 },
      perKey: { rate: 3, intervalMs: 60_000 },
    });
    expect(a.distributed).toBe(true);
    const results: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      results.push((await (i % 2 === 0 ? a : b).tryAcquire('host-1')).allowed);
    }
    expect(results).toEqual([true, true, true, false, false, false]);
    // global: 8 in all; 3 used by host-1
    let granted = 0;
    for (let i = 0; i < 10; i++) {
      if ((await (i % 2 === 0 ? b : a).tryAcquire(`other-${i}`)).allowed) granted++;
    }
    expect(granted).toBe(5);
    const denied = await a.tryAcquire('fresh');
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(0);
    expect(denied.retryAfterMs).toBeLessThanOrEqual(7_500);
  });

  it('is atomic under concurrency: exactly the burst is granted among 200 racing calls', async () => {
    const [a, b] = pair({ name: 'race', global: false, perKey: { rate: 25, intervalMs: 60_000 } });
    const decisions = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).tryAcquire('k')),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(25);
    expect(a.stats().allowed + b.stats().allowed).toBe(25);
    expect(a.stats().throttled + b.stats().throttled).toBe(175);
  });

  it('takes time from the server: a limiter with a clock one hour off still shares the budget', async () => {
    const skewed = { now: () => Date.now() + 3_600_000 };
    const a = new RateLimiter({
      name: 'skew',
      global: false,
      perKey: { rate: 2, intervalMs: 60_000 },
      store: new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix }),
    });
    const b = new RateLimiter({
      name: 'skew',
      global: false,
      perKey: { rate: 2, intervalMs: 60_000 },
      clock: skewed,
      store: new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix }),
    });
    expect((await a.tryAcquire('k')).allowed).toBe(true);
    expect((await b.tryAcquire('k')).allowed).toBe(true);
    const third = await b.tryAcquire('k');
    expect(third.allowed).toBe(false);
    expect(third.retryAfterMs).toBeGreaterThan(29_000);
    expect(third.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('acquire across two processes spaces grants by the shared rate', async () => {
    const [a, b] = pair({ name: 'pace', global: false, perKey: { rate: 50, burst: 1 } });
    const start = performance.now();
    const grants: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).acquire('k').then(() => grants.push(performance.now() - start)),
      ),
    );
    grants.sort((x, y) => x - y);
    // 10 grants at 20 ms spacing need at least 9 intervals (allow 1 ms of rounding per step)
    expect(grants[9]! - grants[0]!).toBeGreaterThanOrEqual(9 * 20 - 10);
    expect(a.stats().waits + b.stats().waits).toBeGreaterThan(0);
  });

  it('rejects past maxWaitMs and aborts promptly while a decision is in flight', async () => {
    const [a] = pair({ name: 'abort', global: false, perKey: { rate: 1, intervalMs: 60_000 } });
    await a.acquire('k');
    await expect(a.acquire('k', { maxWaitMs: 1_000 })).rejects.toBeInstanceOf(RateLimitedError);
    const controller = new AbortController();
    const pending = a.acquire('k', { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(TaskCancelledError);
    expect(a.stats()).toMatchObject({ rejected: 1, cancelled: 1, waiting: 0 });
  });

  it('writes TAT keys that expire after a full refill, in one hash slot', async () => {
    const [a] = pair({
      name: 'ttl',
      global: { rate: 10, intervalMs: 1_000, burst: 10 },
      perKey: { rate: 1, intervalMs: 5_000, burst: 1 },
    });
    await a.tryAcquire('k');
    const admin = redis.client();
    const keys = (await admin.keys(`${redis.prefix}*`)).sort();
    expect(keys).toEqual([`${redis.prefix}rl:{ttl}:global`, `${redis.prefix}rl:{ttl}:key:k`]);
    const globalTtl = await admin.pttl(keys[0]!);
    const keyTtl = await admin.pttl(keys[1]!);
    // each key lives for its bucket's full refill time (tolerance), so it outlives its TAT
    expect(globalTtl).toBeGreaterThan(900);
    expect(globalTtl).toBeLessThanOrEqual(1_000);
    expect(keyTtl).toBeGreaterThan(4_000);
    expect(keyTtl).toBeLessThanOrEqual(5_000);
    expect(await admin.get(keys[1]!)).toMatch(/^\d{16,}$/);
  });

  it('the script refuses malformed arguments without writing anything', async () => {
    const store = new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix });
    const good = ['', 1, '0', '0', '1000', '5000', '0', '5'];
    const bad: (string | number)[][] = [
      ['', -1, ...good.slice(2)],
      ['', 1.5, ...good.slice(2)],
      ['', 1, '0', '0', 'x', '5000', '0', '5'],
      ['', 1, '0', '0', '1000', '5000', '0', '0'],
      ['abc', ...good.slice(1)],
      good.slice(0, 5),
    ];
    for (const args of bad) {
      const reply = await store.runScript(GCRA_SCRIPT, ['rl:bad:key:{k}'], args);
      expect(reply).toEqual({ code: 2, msg: 'BAD_ARGS', payload: [0, 0] });
    }
    // a key count that does not match the buckets enabled
    expect((await store.runScript(GCRA_SCRIPT, [], good)).code).toBe(2);
    expect(await redis.client().keys(`${redis.prefix}*`)).toEqual([]);
    expect((await store.runScript(GCRA_SCRIPT, ['rl:bad:key:{k}'], good)).code).toBe(0);
  });
});
