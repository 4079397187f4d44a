/**
 * The CacheService conformance suite, exported for reuse: the expectations every backend must
 * meet. mocra runs it against LocalBackend and RedisBackend; run it against your own
 * CacheService implementation with vitest or jest (the test functions are passed in, so mocra
 * depends on no test framework).
 */
import type { CacheService } from '../store/types.js';
import { isMocraError } from '../errors.js';

/** What the suite needs for one test: a fresh service, a way to let time pass, a clean-up. */
export interface ConformanceHarness {
  /** A fresh, empty service (use a unique key prefix on shared servers). */
  service: CacheService;
  /** Lets `ms` milliseconds pass for the backend (advance a manual clock, or really wait). */
  elapse(ms: number): Promise<void>;
  /** Deletes what the test wrote and closes the service. */
  cleanup(): Promise<void>;
}

/** The matchers the suite uses (vitest's and jest's `expect` provide them). */
export interface ConformanceMatchers {
  /** Strict equality. */
  toBe(expected: unknown): void;
  /** Deep equality. */
  toEqual(expected: unknown): void;
  /** `=== null`. */
  toBeNull(): void;
  /** `> n`. */
  toBeGreaterThan(n: number): void;
  /** `<= n`. */
  toBeLessThanOrEqual(n: number): void;
}

/** The test functions of your framework: `import { describe, it, expect, beforeEach, afterEach } from 'vitest'`. */
export interface ConformanceTestApi {
  /** Groups tests. */
  describe(name: string, fn: () => void): void;
  /** Declares a test. */
  it(name: string, fn: () => Promise<void>): void;
  /** Makes an assertion. */
  expect(actual: unknown): ConformanceMatchers;
  /** Runs before each test. */
  beforeEach(fn: () => Promise<void>): void;
  /** Runs after each test. */
  afterEach(fn: () => Promise<void>): void;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    if (isMocraError(error)) return error.code;
    throw error;
  }
  throw new Error('expected a rejection');
}

async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const k of iterable) out.push(k);
  return out.sort();
}

/**
 * Declares the CacheService conformance tests for one backend.
 *
 * @example
 * ```ts
 * import { describe, it, expect, beforeEach, afterEach } from 'vitest';
 * import { runCacheServiceConformance } from 'mocra/testing';
 *
 * runCacheServiceConformance('MyBackend', async () => {
 *   const service = new MyBackend();
 *   return { service, elapse: (ms) => new Promise((r) => setTimeout(r, ms)), cleanup: () => service.close() };
 * }, { describe, it, expect, beforeEach, afterEach });
 * ```
 */
export function runCacheServiceConformance(
  name: string,
  setup: () => Promise<ConformanceHarness>,
  api: ConformanceTestApi,
): void {
  const { describe, it, expect, beforeEach, afterEach } = api;
  describe(`CacheService conformance: ${name}`, () => {
    let h: ConformanceHarness;
    let s: CacheService;
    beforeEach(async () => {
      h = await setup();
      s = h.service;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('get/set/overwrite/missing', async () => {
      expect(await s.get('a')).toBeNull();
      await s.set('a', '1');
      expect(await s.get('a')).toBe('1');
      await s.set('a', '');
      expect(await s.get('a')).toBe('');
      await s.set('u', 'żółw 🐢');
      expect(await s.get('u')).toBe('żółw 🐢');
    });

    it('set with a TTL expires; a plain set clears the TTL', async () => {
      // long enough that a busy machine reads the TTL before it runs out
      await s.set('t', 'v', { ttlMs: 1_000 });
      const ttl = await s.ttl('t');
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(1_000);
      await s.set('p', 'v', { ttlMs: 1_000 });
      await s.set('p', 'w');
      expect(await s.ttl('p')).toBe(-1);
      await h.elapse(1_100);
      expect(await s.get('t')).toBeNull();
      expect(await s.ttl('t')).toBe(-2);
      expect(await s.get('p')).toBe('w');
    });

    it('setNX sets only missing keys, and an expired key counts as missing', async () => {
      expect(await s.setNX('n', 'first', { ttlMs: 50 })).toBe(true);
      expect(await s.setNX('n', 'second')).toBe(false);
      expect(await s.get('n')).toBe('first');
      await h.elapse(100);
      expect(await s.setNX('n', 'third')).toBe(true);
      expect(await s.get('n')).toBe('third');
      expect(await s.ttl('n')).toBe(-1);
    });

    it('del counts existing keys only', async () => {
      await s.set('d1', 'x');
      await s.zadd('d2', 1, 'm');
      expect(await s.del('d1', 'd2', 'd3')).toBe(2);
      expect(await s.del()).toBe(0);
      expect(await s.get('d1')).toBeNull();
    });

    it('incr: missing is 0, by may be negative, TTL is kept', async () => {
      expect(await s.incr('c')).toBe(1);
      expect(await s.incr('c', 41)).toBe(42);
      expect(await s.incr('c', -50)).toBe(-8);
      expect(await s.get('c')).toBe('-8');
      await s.set('ct', '5', { ttlMs: 60_000 });
      expect(await s.incr('ct')).toBe(6);
      expect(await s.ttl('ct')).toBeGreaterThan(0);
    });

    it('incr beyond 2^53 keeps the stored value exact and returns Number(text)', async () => {
      await s.set('huge', '9223372036854775806');
      expect(await s.incr('huge')).toBe(Number('9223372036854775807'));
      expect(await s.get('huge')).toBe('9223372036854775807');
      await s.set('edge', '9007199254740992');
      expect(await s.incr('edge')).toBe(Number('9007199254740993'));
      expect(await s.get('edge')).toBe('9007199254740993');
    });

    it('incr refuses non-integers and overflow with NOT_AN_INTEGER, and leaves the value', async () => {
      for (const bad of ['1.5', 'abc', ' 1', '01', '+1', '', '-0', '1e3', '9223372036854775808']) {
        await s.set('bad', bad);
        expect(await codeOf(s.incr('bad'))).toBe('NOT_AN_INTEGER');
        expect(await s.get('bad')).toBe(bad);
      }
      await s.set('big', '9223372036854775807');
      expect(await codeOf(s.incr('big'))).toBe('NOT_AN_INTEGER');
      await s.set('small', '-9223372036854775808');
      expect(await codeOf(s.incr('small', -1))).toBe('NOT_AN_INTEGER');
    });

    it('wrong types: string commands on a sorted set and back', async () => {
      await s.zadd('z', 1, 'a');
      await s.set('str', 'x');
      expect(await codeOf(s.get('z'))).toBe('WRONG_TYPE');
      expect(await codeOf(s.incr('z'))).toBe('WRONG_TYPE');
      expect(await codeOf(s.zadd('str', 1, 'a'))).toBe('WRONG_TYPE');
      expect(await codeOf(s.zrangeByScore('str', 0, 1))).toBe('WRONG_TYPE');
      expect(await codeOf(s.zremRangeByScore('str', 0, 1))).toBe('WRONG_TYPE');
      expect(await s.mget(['z', 'str', 'none'])).toEqual([null, 'x', null]);
      await s.set('z', 'now a string');
      expect(await s.get('z')).toBe('now a string');
    });

    it('mget keeps order and nulls', async () => {
      await s.set('m1', 'a');
      await s.set('m3', 'c');
      expect(await s.mget(['m1', 'm2', 'm3', 'm1'])).toEqual(['a', null, 'c', 'a']);
      expect(await s.mget([])).toEqual([]);
    });

    it('expire and ttl follow PTTL semantics', async () => {
      expect(await s.expire('none', 1000)).toBe(false);
      expect(await s.ttl('none')).toBe(-2);
      await s.set('e', 'v');
      expect(await s.ttl('e')).toBe(-1);
      expect(await s.expire('e', 10_000)).toBe(true);
      const ttl = await s.ttl('e');
      expect(ttl).toBeGreaterThan(9_000);
      expect(ttl).toBeLessThanOrEqual(10_000);
      await s.zadd('ez', 1, 'a');
      expect(await s.expire('ez', 50)).toBe(true);
      await h.elapse(100);
      expect(await s.zrangeByScore('ez', -Infinity, Infinity)).toEqual([]);
    });

    it('zadd adds and updates; ranges are inclusive, ordered by score then member bytes', async () => {
      expect(await s.zadd('z', 2, 'b')).toBe(1);
      expect(await s.zadd('z', 1, 'c')).toBe(1);
      expect(await s.zadd('z', 1, 'a')).toBe(1);
      expect(await s.zadd('z', 1, 'B')).toBe(1);
      expect(await s.zadd('z', 3, 'b')).toBe(0);
      expect(await s.zadd('z', 3, 'b')).toBe(0);
      expect(await s.zrangeByScore('z', -Infinity, Infinity)).toEqual(['B', 'a', 'c', 'b']);
      expect(await s.zrangeByScore('z', 1, 1)).toEqual(['B', 'a', 'c']);
      expect(await s.zrangeByScore('z', 1.5, 3)).toEqual(['b']);
      expect(await s.zrangeByScore('z', 4, 2)).toEqual([]);
      expect(await s.zrangeByScore('none', 0, 10)).toEqual([]);
    });

    it('members sort by UTF-8 bytes, not UTF-16 code units', async () => {
      for (const m of ['\uffff', '😀', 'é', 'z', '']) await s.zadd('u', 0, m);
      expect(await s.zrangeByScore('u', 0, 0)).toEqual(['', 'z', 'é', '\uffff', '😀']);
    });

    it('decimal, negative and infinite scores', async () => {
      await s.zadd('d', -1.25, 'neg');
      await s.zadd('d', 0.1, 'tenth');
      await s.zadd('d', 0.30000000000000004, 'sum');
      await s.zadd('d', Infinity, 'inf');
      await s.zadd('d', -Infinity, 'ninf');
      await s.zadd('d', 1e21, 'huge');
      expect(await s.zrangeByScore('d', -Infinity, Infinity)).toEqual([
        'ninf',
        'neg',
        'tenth',
        'sum',
        'huge',
        'inf',
      ]);
      expect(await s.zrangeByScore('d', 0.1, 0.3)).toEqual(['tenth']);
      expect(await s.zrangeByScore('d', -2, 0)).toEqual(['neg']);
      expect(await s.zrangeByScore('d', Infinity, Infinity)).toEqual(['inf']);
      expect(await codeOf(s.zadd('d', NaN, 'x'))).toBe('CONFIG_INVALID');
    });

    it('offset and count', async () => {
      for (let i = 0; i < 10; i++) await s.zadd('o', i, `m${i}`);
      expect(await s.zrangeByScore('o', 0, 9, { offset: 2, count: 3 })).toEqual(['m2', 'm3', 'm4']);
      expect(await s.zrangeByScore('o', 0, 9, { offset: 8 })).toEqual(['m8', 'm9']);
      expect(await s.zrangeByScore('o', 0, 9, { count: 2 })).toEqual(['m0', 'm1']);
      expect(await s.zrangeByScore('o', 0, 9, { count: 0 })).toEqual([]);
      expect(await s.zrangeByScore('o', 0, 9, { offset: 20, count: 2 })).toEqual([]);
      expect(await codeOf(s.zrangeByScore('o', 0, 9, { offset: -1 }))).toBe('CONFIG_INVALID');
    });

    it('zremRangeByScore removes the range and deletes an emptied set', async () => {
      for (let i = 0; i < 5; i++) await s.zadd('r', i, `m${i}`);
      expect(await s.zremRangeByScore('r', 1, 3)).toBe(3);
      expect(await s.zrangeByScore('r', -Infinity, Infinity)).toEqual(['m0', 'm4']);
      expect(await s.zremRangeByScore('r', -Infinity, Infinity)).toBe(2);
      expect(await s.ttl('r')).toBe(-2);
      expect(await s.zremRangeByScore('none', 0, 1)).toBe(0);
    });

    it('scan lists live keys by prefix, relative to the service prefix', async () => {
      await s.set('scan:a', '1');
      await s.set('scan:b', '1');
      await s.zadd('scan:z', 1, 'm');
      await s.set('other', '1');
      await s.set('scan:gone', '1', { ttlMs: 30 });
      await s.set('scan:*glob', '1');
      await h.elapse(80);
      expect(await collect(s.scan('scan:'))).toEqual(['scan:*glob', 'scan:a', 'scan:b', 'scan:z']);
      expect(await collect(s.scan('scan:*'))).toEqual(['scan:*glob']);
      expect(await collect(s.scan('nothing:'))).toEqual([]);
    });

    it('rejects bad arguments the same way (CONFIG_INVALID)', async () => {
      expect(await codeOf(s.set('k', 1 as never))).toBe('CONFIG_INVALID');
      expect(await codeOf(s.set('k', 'v', { ttlMs: 0 }))).toBe('CONFIG_INVALID');
      expect(await codeOf(s.set('k', 'v', { ttlMs: 1.5 }))).toBe('CONFIG_INVALID');
      expect(await codeOf(s.set('k', 'v', { ttl: 5 } as never))).toBe('CONFIG_INVALID');
      expect(await codeOf(s.get(5 as never))).toBe('CONFIG_INVALID');
      expect(await codeOf(s.incr('k', 1.5))).toBe('CONFIG_INVALID');
      expect(await codeOf(s.expire('k', -1))).toBe('CONFIG_INVALID');
      expect(await codeOf(s.mget('k' as never))).toBe('CONFIG_INVALID');
    });
  });
}
