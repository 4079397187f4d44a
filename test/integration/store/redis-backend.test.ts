import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { decodeReply } from '../../../src/store/redis-scripts.js';
import { createCacheService } from '../../../src/store/create.js';
import { isMocraError } from '../../../src/errors.js';
import { runCacheServiceConformance } from '../../conformance/cache-service.js';
import { describeRedis, redisUrl, useRedis } from '../../helpers/redis.js';
import { startRedisServer } from '../../helpers/redis-server.js';

if (redisUrl()) {
  runCacheServiceConformance('RedisBackend', async () => {
    const keyPrefix = `mocra-test-${randomBytes(6).toString('hex')}:`;
    const service = new RedisBackend({ redis: redisUrl()!, keyPrefix });
    await service.connect();
    return {
      service,
      elapse: (ms) => new Promise((r) => setTimeout(r, ms)),
      cleanup: async () => {
        for await (const key of service.scan('')) await service.del(key);
        await service.close();
      },
    };
  });
}

describeRedis('RedisBackend scripts and connections', () => {
  const redis = useRedis();

  async function backend(
    options: Partial<ConstructorParameters<typeof RedisBackend>[0]> = {},
  ): Promise<RedisBackend> {
    const b = new RedisBackend({ redis: redis.url, keyPrefix: redis.prefix, ...options });
    await b.connect();
    return b;
  }

  it('runs a compiled script, and reloads it transparently after SCRIPT FLUSH (NOSCRIPT)', async () => {
    const b = await backend();
    await b.set('lock', 'me');
    expect(await b.runScript('store_compare_and_delete', ['lock'], ['you'])).toEqual({
      code: 1,
      msg: 'MISMATCH',
      payload: [],
    });
    await redis.client().script('FLUSH');
    expect(await b.runScript('store_compare_and_delete', ['lock'], ['me'])).toEqual({
      code: 0,
      msg: 'DELETED',
      payload: [],
    });
    expect(await b.runScript('store_compare_and_delete', ['lock'], ['me'])).toEqual({
      code: 2,
      msg: 'MISSING',
      payload: [],
    });
    expect(await b.get('lock')).toBeNull();
    await b.close();
  });

  it('coalesces the scripts of one tick into shared socket writes, every reply intact', async () => {
    const b = await backend();
    const n = 200;
    for (let i = 0; i < n; i += 50)
      await Promise.all(Array.from({ length: 50 }, (_, j) => b.set(`c:${i + j}`, `v${i + j}`)));
    const socket = (b.client as Redis).stream;
    expect(socket.writableCorked).toBe(0);
    // half of the calls match their key's value, half do not: each reply must be its own
    const calls = Array.from({ length: n }, (_, i) =>
      b.runScript('store_compare_and_delete', [`c:${i}`], [i % 2 === 0 ? `v${i}` : 'other']),
    );
    // still in the tick that made them: the socket holds the last group
    expect(socket.writableCorked).toBe(1);
    const replies = await Promise.all(calls);
    expect(socket.writableCorked).toBe(0);
    replies.forEach((r, i) =>
      expect(r.msg, `call ${i}`).toBe(i % 2 === 0 ? 'DELETED' : 'MISMATCH'),
    );
    for (let i = 0; i < n; i += 50) {
      const values = await Promise.all(Array.from({ length: 50 }, (_, j) => b.get(`c:${i + j}`)));
      values.forEach((v, j) => expect(v).toBe((i + j) % 2 === 0 ? null : `v${i + j}`));
    }
    await b.close();
  });

  it('refuses a script call whose keys span cluster slots, and unknown scripts', async () => {
    const b = await backend();
    await expect(
      b.runScript('store_compare_and_delete', ['{a}x', '{b}y'], ['v']),
    ).rejects.toMatchObject({
      code: 'SCRIPT_FAILED',
      message: expect.stringContaining('different cluster slots'),
    });
    await expect(b.runScript('nope', [], [])).rejects.toMatchObject({ code: 'SCRIPT_FAILED' });
    await b.close();
  });

  it('decodes only [int, string, ...ints|strings] replies', () => {
    expect(decodeReply('s', [0, 'OK', 1, 'x'])).toEqual({ code: 0, msg: 'OK', payload: [1, 'x'] });
    for (const bad of [null, 'OK', [0], ['0', 'OK'], [0, 1], [0, 'OK', null], [0, 'OK', [1]]]) {
      expect(() => decodeReply('s', bad)).toThrow(/malformed|non-scalar/);
    }
  });

  it('uses a client it was given without closing it', async () => {
    const client = redis.client();
    const b = new RedisBackend({ redis: client, keyPrefix: redis.prefix });
    await b.set('k', 'v');
    await b.close();
    expect(await client.get(`${redis.prefix}k`)).toBe('v');
  });

  it('createCacheService with redis gives a connected distributed backend', async () => {
    const service = await createCacheService({ redis: redis.url, keyPrefix: redis.prefix });
    expect(service.mode).toBe('distributed');
    await service.set('x', '1');
    expect(await service.get('x')).toBe('1');
    await service.close();
  });

  it('validates the connection option', () => {
    expect(() => new RedisBackend({ redis: 'http://x' })).toThrow(/`redis` to be a redis:\/\//);
    expect(() => new RedisBackend({ redis: 5 as never })).toThrow(/`redis`/);
  });
});

describe('RedisBackend when the server goes away', () => {
  it.runIf(redisUrl() !== null)(
    'fails fast with BACKEND_UNAVAILABLE (retryable), then recovers after a restart',
    async () => {
      const server = await startRedisServer();
      const b = new RedisBackend({ redis: server.url });
      try {
        await b.connect();
        await b.set('k', 'v');
        await server.kill();
        let error: unknown;
        for (let i = 0; i < 50 && !error; i++) {
          try {
            await b.get('k');
            await new Promise((r) => setTimeout(r, 20));
          } catch (e) {
            error = e;
          }
        }
        expect(isMocraError(error, 'BACKEND_UNAVAILABLE')).toBe(true);
        expect((error as { retryable: boolean }).retryable).toBe(true);
        await server.restart();
        let value: string | null | undefined;
        for (let i = 0; i < 100 && value === undefined; i++) {
          value = await b.get('k').catch(() => undefined);
          if (value === undefined) await new Promise((r) => setTimeout(r, 50));
        }
        expect(value).toBeNull(); // a fresh server without persistence: the key is gone
        // scripts on the new connection: written (and coalesced) on the new socket
        await b.set('k', 'v');
        const replies = await Promise.all(
          ['x', 'v', 'v'].map((expected) =>
            b.runScript('store_compare_and_delete', ['k'], [expected]),
          ),
        );
        expect(replies.map((r) => r.msg)).toEqual(['MISMATCH', 'DELETED', 'MISSING']);
        await expect(createCacheService({ redis: 'redis://127.0.0.1:1' })).rejects.toMatchObject({
          code: 'BACKEND_UNAVAILABLE',
        });
      } finally {
        await b.close();
        await server.stop();
      }
    },
  );
});
