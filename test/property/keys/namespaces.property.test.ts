/**
 * Key prefixes are namespaces: for any two prefixes that name different namespaces, no key of
 * one is a key of the other (store keyPrefix and ChainKeyBuilder prefix alike), and a backend
 * never reads, scans or deletes the keys of another prefix.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { namespacePrefix } from '../../../src/keys/namespace.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';
import type { CacheService } from '../../../src/store/types.js';

/** Prefixes built from the characters that matter: delimiters, escapes, letters. */
const prefix = fc.string({ unit: fc.constantFrom('a', 'b', ':', '%', '3', 'A'), maxLength: 6 });
const key = fc.string({ unit: fc.constantFrom('a', 'b', ':', '%', '3', 'A', '2'), maxLength: 8 });

describe('key namespaces', () => {
  it('two store prefixes that name different namespaces share no key', () => {
    fc.assert(
      fc.property(prefix, prefix, key, key, (p, q, k1, k2) => {
        const a = namespacePrefix(p);
        const b = namespacePrefix(q);
        fc.pre(a !== b && a !== '' && b !== '');
        expect(a + k1).not.toBe(b + k2);
      }),
      { numRuns: 5_000 },
    );
  });

  it('a trailing delimiter names the same namespace; anything else a different one', () => {
    expect(namespacePrefix('app')).toBe('app:');
    expect(namespacePrefix('app:')).toBe('app:');
    expect(namespacePrefix('app2')).toBe('app2:');
    expect(namespacePrefix('shop:eu:')).toBe('shop%3Aeu:');
    expect(namespacePrefix('')).toBe('');
    expect(() => namespacePrefix(3 as never)).toThrow(/`keyPrefix`/);
  });

  it('two ChainKeyBuilder prefixes share no key', () => {
    const build = (k: ChainKeyBuilder, name: string, id: string): string[] => [
      k.queue(name),
      k.queueDeadLetters(name),
      k.lock(name),
      k.activeTasks(),
      k.taskRecord(id),
      k.outbox(id),
      k.exec(id, name, name),
    ];
    const chainPrefix = prefix.filter((p) => p.length > 0);
    fc.assert(
      fc.property(chainPrefix, chainPrefix, key, key, (p, q, n, m) => {
        fc.pre(p !== q);
        const a = build(new ChainKeyBuilder({ prefix: p }), n || 'x', n || 'x');
        const b = new Set(build(new ChainKeyBuilder({ prefix: q }), m || 'y', m || 'y'));
        for (const k of a) expect(b.has(k)).toBe(false);
      }),
      { numRuns: 2_000 },
    );
    // the case from the issue
    const a = new ChainKeyBuilder({ prefix: 'a' });
    const aq = new ChainKeyBuilder({ prefix: 'a:queue' });
    expect(a.queueDeadLetters('queue')).not.toBe(aq.queue('dead'));
  });
});

async function isolation(make: (keyPrefix: string) => Promise<CacheService>): Promise<void> {
  const app = await make('app');
  const app2 = await make('app2');
  const nested = await make('app:x');
  try {
    await app2.set('foo', 'secret');
    await nested.set('foo', 'nested');
    expect(await app.get('2foo')).toBeNull();
    expect(await app.get('x:foo')).toBeNull();
    const seen: string[] = [];
    for await (const k of app.scan('')) seen.push(k);
    expect(seen).toEqual([]);
    expect(await app.del('2foo', 'x:foo')).toBe(0);
    expect(await app2.get('foo')).toBe('secret');
    expect(await nested.get('foo')).toBe('nested');
  } finally {
    await app2.del('foo');
    await nested.del('foo');
    await Promise.all([app.close(), app2.close(), nested.close()]);
  }
}

describeRedis('store prefixes (Redis)', () => {
  const redis = useRedis();
  it("prefix 'app' neither reads, scans nor deletes the keys of 'app2' or 'app:x'", async () => {
    const base = redis.prefix.slice(0, -1); // unique per test, no ':' inside
    await isolation(async (keyPrefix) => {
      const b = new RedisBackend({ redis: redis.client(), keyPrefix: `${base}-${keyPrefix}` });
      return b;
    });
  });
});
