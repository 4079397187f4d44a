/** The scheduler, the rate limiter and PluginCache report to an optional `metrics`. */
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  createScheduler,
  InMemoryMetrics,
  PluginCache,
  RateLimiter,
} from '../../../src/index.js';

describe('metrics of the primitives', () => {
  it('a scheduler reports its queue depth and each task wait', async () => {
    const metrics = new InMemoryMetrics();
    const scheduler = createScheduler({ maxConcurrent: 1, metrics, name: 'jobs' });
    let release!: () => void;
    const first = scheduler.run(() => new Promise<void>((r) => (release = r)));
    const second = scheduler.run(async () => {});
    const third = scheduler.run(async () => {});
    expect(metrics.gaugeValue('scheduler_queue_depth', { scheduler: 'jobs' })).toBe(2);
    release();
    await Promise.all([first, second, third]);
    expect(metrics.histogram('scheduler_wait_ms', { scheduler: 'jobs' })?.count).toBe(3);
    expect(metrics.gaugeValue('scheduler_queue_depth', { scheduler: 'jobs' })).toBe(0);
    await scheduler.shutdown();
  });

  it('a rate limiter reports allowed, waited, throttled and rejected decisions and its waits', async () => {
    const metrics = new InMemoryMetrics();
    let now = 0;
    const limiter = new RateLimiter({
      global: false,
      perKey: { rate: 1, intervalMs: 20, burst: 1 },
      metrics,
      name: 'api',
      clock: { now: () => now },
    });
    const count = (decision: string): number =>
      metrics.counter('rate_limit_decision_total', { limiter: 'api', decision });
    await limiter.acquire('k');
    expect((await limiter.tryAcquire('k')).allowed).toBe(false);
    await expect(limiter.acquire('k', { maxWaitMs: 1 })).rejects.toMatchObject({
      code: 'RATE_LIMITED',
    });
    const waiting = limiter.acquire('k');
    now += 20;
    await waiting;
    expect([count('allowed'), count('throttled'), count('rejected'), count('waited')]).toEqual([
      1, 1, 1, 1,
    ]);
    expect(metrics.histogram('rate_limit_wait_ms', { limiter: 'api' })?.count).toBe(1);
  });

  it('a PluginCache counts hits and misses under its name', async () => {
    const metrics = new InMemoryMetrics();
    const cache = new PluginCache<number>({ metrics, name: 'users' });
    await cache.getOrCompute('p', 'a', () => 1);
    await cache.getOrCompute('p', 'a', () => 2);
    cache.get('p', 'b');
    expect(metrics.counter('cache_hit_total', { cache: 'users' })).toBe(cache.stats().hits);
    expect(metrics.counter('cache_miss_total', { cache: 'users' })).toBe(cache.stats().misses);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2 });
  });

  it('each refuses a metrics option that is not a Metrics, naming it', () => {
    for (const make of [
      () => createScheduler({ metrics: {} as never }),
      () => new RateLimiter({ metrics: { increment() {} } as never }),
      () => new PluginCache({ metrics: 'prom' as never }),
    ]) {
      expect(make).toThrow(ConfigError);
      expect(make).toThrow(/metrics/);
    }
  });
});
