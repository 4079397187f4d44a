import { describe, expect, it } from 'vitest';
import { ConfigError, LocalBackend, PluginCache, canonicalKey } from '../../../src/index.js';
import { ManualClock } from '../../../src/internal/clock.js';

function setup(options: ConstructorParameters<typeof PluginCache>[0] = {}) {
  const clock = new ManualClock(1_000);
  const cache = new PluginCache<string>({ clock, ...options });
  return { clock, cache };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('PluginCache', () => {
  it('expires at TTL even when read often', () => {
    const { clock, cache } = setup({ ttlMs: 1_000, ttiMs: 10_000 });
    cache.set('p', 'k', 'v');
    for (let i = 0; i < 9; i++) {
      clock.advance(100);
      expect(cache.get('p', 'k')).toBe('v');
    }
    clock.advance(100);
    expect(cache.get('p', 'k')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 9, misses: 1, expirations: 1, size: 0 });
  });

  it('expires at TTI when idle, and a read extends it', () => {
    const { clock, cache } = setup({ ttlMs: 10_000, ttiMs: 500 });
    cache.set('p', 'k', 'v');
    clock.advance(499);
    expect(cache.get('p', 'k')).toBe('v');
    clock.advance(499);
    expect(cache.get('p', 'k')).toBe('v');
    clock.advance(500);
    expect(cache.get('p', 'k')).toBeUndefined();
  });

  it('evicts the least recently used beyond maxEntries', () => {
    const { cache } = setup({ maxEntries: 3 });
    cache.set('p', 'a', '1');
    cache.set('p', 'b', '2');
    cache.set('q', 'c', '3');
    expect(cache.get('p', 'a')).toBe('1'); // a is now most recent
    cache.set('q', 'd', '4'); // evicts b
    expect(cache.get('p', 'b')).toBeUndefined();
    expect(cache.get('p', 'a')).toBe('1');
    expect(cache.stats()).toMatchObject({ evictions: 1, size: 3 });
  });

  it('with the default (coarse) clock, entries still expire in real time', async () => {
    const cache = new PluginCache<string>({ ttlMs: 5, ttiMs: 1_000 });
    cache.set('p', 'k', 'v');
    expect(cache.get('p', 'k')).toBe('v');
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(cache.get('p', 'k')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, expirations: 1 });
  });

  it('keeps a plugin whose only entry was pushed out by its own new entry', () => {
    const { cache } = setup({ maxEntries: 1 });
    cache.set('p', 'a', '1');
    cache.set('p', 'b', '2'); // evicts a, the plugin's last entry, to make room for b
    expect(cache.get('p', 'b')).toBe('2');
    cache.set('q', 'c', '3');
    expect(cache.get('p', 'b')).toBeUndefined();
    expect(cache.get('q', 'c')).toBe('3');
    expect(cache.invalidatePlugin('p')).toBe(0);
    expect(cache.invalidatePlugin('q')).toBe(1);
    cache.set('p', 'd', '4');
    expect(cache.get('p', 'd')).toBe('4');
    expect(cache.stats()).toMatchObject({ evictions: 2, size: 1 });
  });

  it('reuses the slots of removed entries and grows past its first block', () => {
    const { cache } = setup({ maxEntries: 200 });
    for (let i = 0; i < 200; i++) cache.set('p', i, `v${i}`);
    for (let i = 0; i < 100; i++) cache.invalidate('p', i);
    for (let i = 200; i < 300; i++) cache.set('q', i, `v${i}`);
    expect(cache.stats()).toMatchObject({ size: 200, evictions: 0 });
    for (let i = 100; i < 200; i++) expect(cache.get('p', i)).toBe(`v${i}`);
    for (let i = 200; i < 300; i++) expect(cache.get('q', i)).toBe(`v${i}`);
    cache.set('r', 'new', 'x'); // the least recent is p's 100
    expect(cache.get('p', 100)).toBeUndefined();
    expect(cache.stats()).toMatchObject({ size: 200, evictions: 1 });
  });

  it('singleflight: concurrent misses share one computation', async () => {
    const { cache } = setup();
    const gate = deferred<string>();
    let calls = 0;
    const compute = () => {
      calls++;
      return gate.promise;
    };
    const all = Array.from({ length: 10 }, () => cache.getOrCompute('p', 'k', compute));
    gate.resolve('value');
    expect(await Promise.all(all)).toEqual(Array(10).fill('value'));
    expect(calls).toBe(1);
    expect(await cache.getOrCompute('p', 'k', compute)).toBe('value');
    expect(calls).toBe(1);
    expect(cache.stats()).toMatchObject({ loads: 1, hits: 1, misses: 10 });
  });

  it('a failure is not cached and every waiter sees it; the next call recomputes', async () => {
    const { cache } = setup();
    const gate = deferred<string>();
    const boom = new Error('upstream down');
    const a = cache.getOrCompute('p', 'k', () => gate.promise);
    const b = cache.getOrCompute('p', 'k', () => 'never');
    gate.reject(boom);
    await expect(a).rejects.toBe(boom);
    await expect(b).rejects.toBe(boom);
    expect(cache.get('p', 'k')).toBeUndefined();
    expect(await cache.getOrCompute('p', 'k', () => 'fresh')).toBe('fresh');
    expect(cache.stats()).toMatchObject({ loads: 2, loadErrors: 1 });
    await expect(
      cache.getOrCompute('p', 'z', () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });

  it('a computation invalidated (or overwritten) while running does not write back', async () => {
    const { cache } = setup();
    const gate = deferred<string>();
    const running = cache.getOrCompute('p', 'k', () => gate.promise);
    expect(cache.invalidate('p', 'k')).toBe(false);
    const fresh = cache.getOrCompute('p', 'k', () => 'new'); // does not join the stale one
    gate.resolve('stale');
    expect(await running).toBe('stale');
    expect(await fresh).toBe('new');
    expect(cache.get('p', 'k')).toBe('new');

    const g2 = deferred<string>();
    const r2 = cache.getOrCompute('p', 'x', () => g2.promise);
    cache.set('p', 'x', 'explicit');
    g2.resolve('late');
    await r2;
    expect(cache.get('p', 'x')).toBe('explicit');

    const g3 = deferred<string>();
    const r3 = cache.getOrCompute('q', 'y', () => g3.promise);
    cache.invalidatePlugin('q');
    g3.resolve('late');
    await r3;
    expect(cache.get('q', 'y')).toBeUndefined();

    const g4 = deferred<string>();
    const r4 = cache.getOrCompute('q', 'y', () => g4.promise);
    cache.clear();
    g4.resolve('late');
    await r4;
    expect(cache.stats().size).toBe(0);
  });

  it('force recomputes a fresh value', async () => {
    const { cache } = setup();
    await cache.getOrCompute('p', 'k', () => 'one');
    expect(await cache.getOrCompute('p', 'k', () => 'two')).toBe('one');
    expect(await cache.getOrCompute('p', 'k', () => 'two', { force: true })).toBe('two');
    expect(cache.get('p', 'k')).toBe('two');
  });

  it('invalidatePlugin removes exactly that plugin’s entries and returns the count', () => {
    const { cache } = setup();
    for (let i = 0; i < 5; i++) cache.set('a', `k${i}`, 'v');
    for (let i = 0; i < 3; i++) cache.set('b', `k${i}`, 'v');
    expect(cache.invalidatePlugin('a')).toBe(5);
    expect(cache.invalidatePlugin('a')).toBe(0);
    expect(cache.invalidatePlugin('nobody')).toBe(0);
    expect(cache.stats().size).toBe(3);
    expect(cache.get('b', 'k2')).toBe('v');
    expect(cache.invalidate('b', 'k2')).toBe(true);
    expect(cache.invalidate('b', 'k2')).toBe(false);
  });

  it('object keys are canonical: field order does not matter, types do', () => {
    const { cache } = setup();
    cache.set('p', { q: 'shoes', page: 2, filters: { size: [42, 43], color: 'red' } }, 'hit');
    expect(cache.get('p', { filters: { color: 'red', size: [42, 43] }, page: 2, q: 'shoes' })).toBe(
      'hit',
    );
    expect(
      cache.get('p', { q: 'shoes', page: '2', filters: { size: [42, 43], color: 'red' } }),
    ).toBeUndefined();
    cache.set('p', 1, 'number');
    cache.set('p', '1', 'string');
    expect(cache.get('p', 1)).toBe('number');
    expect(cache.get('p', '1')).toBe('string');
    expect(canonicalKey('\u0000x')).not.toBe(canonicalKey(['x']));
    expect(canonicalKey(-0)).toBe(canonicalKey(0));
  });

  it.each<[string, unknown, RegExp]>([
    ['a function', () => 1, /`key`/],
    ['NaN nested', { a: [1, NaN] }, /`key\.a\[1\]` to be a finite number/],
    ['a Date', new Date(), /a plain object/],
    ['a bigint', 10n, /`key`/],
    ['undefined in an object', { a: undefined }, /`key\.a`/],
  ])('refuses %s as a key with ConfigError naming the path', (_n, key, message) => {
    const { cache } = setup();
    expect(() => cache.get('p', key)).toThrow(ConfigError);
    expect(() => cache.get('p', key)).toThrow(message);
  });

  it('refuses cyclic keys', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalKey(cyclic)).toThrow(/without cycles/);
  });

  it('prune removes expired entries without reads', () => {
    const { clock, cache } = setup({ ttlMs: 100, ttiMs: Infinity });
    for (let i = 0; i < 10; i++) cache.set('p', `k${i}`, 'v');
    clock.advance(50);
    cache.set('p', 'late', 'v');
    clock.advance(60);
    expect(cache.prune()).toBe(10);
    expect(cache.stats()).toMatchObject({ size: 1, expirations: 10 });
  });

  it('hitRate', async () => {
    const { cache } = setup();
    expect(cache.stats().hitRate).toBe(0);
    await cache.getOrCompute('p', 'k', () => 'v');
    cache.get('p', 'k');
    cache.get('p', 'k');
    cache.get('p', 'k');
    expect(cache.stats().hitRate).toBe(0.75);
  });

  it('a second tier is read on a local miss, written on a load, and its failures never fail a load', async () => {
    const tier2 = new LocalBackend({ sweepIntervalMs: 0 });
    const a = new PluginCache<{ n: number }>({ tier2 });
    const b = new PluginCache<{ n: number }>({ tier2 });
    expect(await a.getOrCompute('p', { id: 1 }, () => ({ n: 1 }))).toEqual({ n: 1 });
    await new Promise((r) => setImmediate(r));
    let computed = false;
    expect(await b.getOrCompute('p', { id: 1 }, () => ((computed = true), { n: 2 }))).toEqual({
      n: 1,
    });
    expect(computed).toBe(false);
    expect(b.stats().tier2Hits).toBe(1);
    expect(a.invalidatePlugin('p')).toBe(1);
    await new Promise((r) => setTimeout(r, 10));
    b.invalidate('p', { id: 1 });
    expect(await b.getOrCompute('p', { id: 1 }, () => ({ n: 3 }))).toEqual({ n: 3 });
    await tier2.close();
    const broken = new PluginCache<string>({
      tier2: {
        ...tier2,
        get: () => Promise.reject(new Error('down')),
        set: () => Promise.reject(new Error('down')),
      } as never,
    });
    expect(await broken.getOrCompute('p', 'k', () => 'computed')).toBe('computed');
    await new Promise((r) => setImmediate(r));
    expect(broken.stats().tier2Errors).toBe(2);
  });

  it.each<[string, object]>([
    ['ttlMs 0', { ttlMs: 0 }],
    ['ttiMs negative', { ttiMs: -1 }],
    ['maxEntries 0', { maxEntries: 0 }],
    ['maxEntries 1.5', { maxEntries: 1.5 }],
    ['a bad tier2', { tier2: {} }],
    ['unknown option', { ttl: 5 }],
  ])('rejects %s with ConfigError', (_n, options) => {
    expect(() => new PluginCache(options as never)).toThrow(ConfigError);
  });

  it('validates getOrCompute arguments', async () => {
    const { cache } = setup();
    await expect(cache.getOrCompute('', 'k', () => 'v')).rejects.toThrow(/`pluginId`/);
    await expect(cache.getOrCompute('p', 'k', 'nope' as never)).rejects.toThrow(
      /`compute` to be a function/,
    );
  });
});
