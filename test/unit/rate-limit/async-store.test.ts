/**
 * The limiter over an asynchronous store (the shape of the Redis store), without Redis: a fake
 * script runner answers from an in-process store after a tick.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BackendUnavailableError, ScriptError } from '../../../src/errors.js';
import { LocalRateStore } from '../../../src/rate-limit/local-store.js';
import type { ResolvedBucket } from '../../../src/rate-limit/options.js';
import { RateLimiter } from '../../../src/rate-limit/index.js';
import { bucketKeys, decodeReply } from '../../../src/rate-limit/redis-store.js';
import type { CacheService, ScriptReply, ScriptRunner } from '../../../src/store/types.js';

const clock = { now: () => Date.now() };

/** A distributed store whose script runs on a LocalRateStore, answering after `delayMs`. */
function fakeRedis(delayMs = 1) {
  const local = new LocalRateStore(clock);
  const calls: { keys: string[]; args: (string | number)[] }[] = [];
  let failNext: unknown = null;
  let garbageNext = false;
  const bucket = (em: unknown, tol: unknown): ResolvedBucket | null =>
    Number(em) === 0
      ? null
      : { rate: 0, intervalMs: 0, burst: 0, emissionUs: Number(em), toleranceUs: Number(tol) };
  const runner: ScriptRunner = {
    async runScript(name, keys, args): Promise<ScriptReply> {
      calls.push({ keys, args });
      await new Promise((r) => setTimeout(r, delayMs));
      if (failNext !== null) {
        const error = failNext;
        failNext = null;
        throw error;
      }
      if (garbageNext) {
        garbageNext = false;
        return { code: 7, msg: 'WHAT', payload: [] };
      }
      expect(name).toBe('rate_limit_gcra');
      const d = local.decide(
        keys[keys.length - 1]!,
        Number(args[1]),
        bucket(args[2], args[3]),
        bucket(args[4], args[5]),
      );
      return d.allowed
        ? { code: 0, msg: 'ALLOWED', payload: [0, d.remaining] }
        : { code: 1, msg: 'THROTTLED', payload: [d.retryAfterMs * 1000, d.remaining] };
    },
  };
  const store = { mode: 'distributed', keyPrefix: '', ...runner } as unknown as CacheService;
  return {
    store,
    calls,
    failOnce: (e: unknown) => (failNext = e),
    garbageOnce: () => (garbageNext = true),
  };
}

function track(label: string, promise: Promise<unknown>, log: string[], start: number) {
  promise.then(
    () => log.push(`${label}@${Date.now() - start}`),
    (e: unknown) =>
      log.push(`${label}!${(e as { code?: string }).code ?? e}@${Date.now() - start}`),
  );
}

describe('RateLimiter over an asynchronous (Redis-shaped) store', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 5_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('passes keys and integer arguments as the script expects', async () => {
    const fake = fakeRedis();
    const l = new RateLimiter({
      clock,
      name: 'n',
      store: fake.store,
      global: { rate: 100 },
      perKey: { rate: 3, burst: 2 },
    });
    const pending = l.tryAcquire('host');
    await vi.advanceTimersByTimeAsync(1);
    expect(await pending).toEqual({ allowed: true, retryAfterMs: 0, remaining: 1 });
    expect(fake.calls[0]).toEqual({
      keys: ['rl:{n}:global', 'rl:{n}:key:host'],
      args: ['', 1, '10000', '1000000', '333334', '666668', '1000', '667'],
    });
    const perKeyOnly = new RateLimiter({ clock, name: 'n', store: fake.store, global: false });
    void perKeyOnly.tryAcquire('host');
    expect(fake.calls[1]!.keys).toEqual(['rl:n:key:{host}']);
  });

  it('serves one key in FIFO order while decisions are in flight', async () => {
    const fake = fakeRedis(3);
    const l = new RateLimiter({
      clock,
      store: fake.store,
      global: false,
      perKey: { rate: 10, burst: 3 },
    });
    const start = Date.now();
    const log: string[] = [];
    track('A3', l.acquire('k', { cost: 3 }), log, start);
    track('B3', l.acquire('k', { cost: 3 }), log, start);
    track('C1', l.acquire('k', { cost: 1 }), log, start);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(log).toEqual(['A3@3', 'B3@306', 'C1@409']);
    expect(l.stats()).toMatchObject({ allowed: 3, waiting: 0, waits: 2 });
  });

  it('a store failure rejects the waiter it concerns; the next one still gets served', async () => {
    const fake = fakeRedis();
    const l = new RateLimiter({ clock, store: fake.store, global: false, perKey: { rate: 10 } });
    const start = Date.now();
    const log: string[] = [];
    fake.failOnce(new BackendUnavailableError('down'));
    track('first', l.acquire('k'), log, start);
    track('second', l.acquire('k'), log, start);
    await vi.advanceTimersByTimeAsync(10);
    expect(log).toEqual(['first!BACKEND_UNAVAILABLE@1', 'second@2']);
    fake.failOnce(new BackendUnavailableError('down'));
    const tried = expect(l.tryAcquire('k')).rejects.toBeInstanceOf(BackendUnavailableError);
    await vi.advanceTimersByTimeAsync(1);
    await tried;
  });

  it('an unexpected script reply is a ScriptError', async () => {
    const fake = fakeRedis();
    const l = new RateLimiter({ clock, store: fake.store });
    fake.garbageOnce();
    const pending = expect(l.tryAcquire('k')).rejects.toBeInstanceOf(ScriptError);
    await vi.advanceTimersByTimeAsync(1);
    await pending;
    expect(() => decodeReply({ code: 0, msg: 'ALLOWED', payload: [0, -1] })).toThrow(ScriptError);
    expect(() => decodeReply({ code: 2, msg: 'BAD_ARGS', payload: [0, 0] })).toThrow(/BAD_ARGS/);
    expect(decodeReply({ code: 1, msg: 'THROTTLED', payload: ['1500', '2'] })).toEqual({
      allowed: false,
      retryAfterMs: 2,
      remaining: 2,
    });
  });

  it('aborting the head while its decision is in flight rejects at once', async () => {
    const fake = fakeRedis(50);
    const l = new RateLimiter({ clock, store: fake.store, global: false, perKey: { rate: 10 } });
    const controller = new AbortController();
    const start = Date.now();
    const log: string[] = [];
    track('head', l.acquire('k', { signal: controller.signal }), log, start);
    track('next', l.acquire('k'), log, start);
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(log).toEqual(['head!TASK_CANCELLED@10']);
    await vi.advanceTimersByTimeAsync(200);
    expect(log).toEqual(['head!TASK_CANCELLED@10', 'next@100']);
    expect(l.stats()).toMatchObject({ cancelled: 1, waiting: 0 });
  });
});

describe('Redis key layout', () => {
  /** Redis Cluster's hash-tag rule: the part between the first '{' and the next '}', if non-empty. */
  function hashTag(key: string): string {
    const open = key.indexOf('{');
    if (open < 0) return key;
    const close = key.indexOf('}', open + 1);
    if (close < 0 || close === open + 1) return key;
    return key.slice(open + 1, close);
  }

  it('puts the global and every per-key bucket of a limiter in one slot', () => {
    for (const key of ['a', 'user:{x}', '', '}{', 'ü']) {
      const [g, k] = bucketKeys('api', key, true);
      expect(hashTag(g)).toBe('api');
      expect(hashTag(k)).toBe('api');
    }
  });

  it('spreads per-key buckets by key when there is no global bucket', () => {
    expect(hashTag(bucketKeys('api', 'host-1', false)[1])).toBe('host-1');
    expect(hashTag(bucketKeys('api', 'host-2', false)[1])).toBe('host-2');
  });
});
