/**
 * Redis faults on a private redis-server: a stopped server, a frozen one (SIGSTOP) and one out of
 * memory. Every Redis caller (backend, scripts, rate limiter, stream queues) reports the same
 * failure with the same code, and no call waits longer than its bound while Redis stalls.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisStreamQueue } from '../../../src/chain/redis-stream-queue.js';
import { ErrorCode, isMocraError } from '../../../src/errors.js';
import { RateLimiter } from '../../../src/rate-limit/index.js';
import { createCacheService } from '../../../src/store/create.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import {
  offlineClient,
  redisServerBinary,
  startRedisServer,
  type RedisServer,
} from '../../helpers/redis-server.js';

const CI = process.env.CI === 'true' || process.env.CI === '1';

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

function streamQueue(client: Redis, name: string, commandTimeoutMs = 5_000) {
  return new RedisStreamQueue<string>({
    client,
    name,
    key: `faults:${name}`,
    deadLetterKey: `faults:${name}:dead`,
    group: 'g',
    consumer: 'c',
    encode: (s) => s,
    decode: (s) => s,
    blockMs: 50,
    commandTimeoutMs,
  });
}

describe.skipIf(!CI && redisServerBinary() === null)('Redis faults', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    server.resume();
    await server.stop();
  });

  it('an offline client: the queue and the backend give the same retryable BACKEND_UNAVAILABLE', async () => {
    // every command fails at once with "Stream isn't writeable and enableOfflineQueue options is false"
    const offline = await offlineClient();
    const queue = streamQueue(offline, 'offline');
    const backend = new RedisBackend({ redis: offline });
    try {
      const fromQueue = await failure(queue.push('m'));
      const fromBackend = await failure(backend.get('k'));
      const fromScript = await failure(backend.runScript('rate_limit_gcra', ['a'], ['', 1]));
      for (const error of [fromQueue, fromBackend, fromScript]) {
        expect(isMocraError(error, ErrorCode.BACKEND_UNAVAILABLE)).toBe(true);
        expect(error).toMatchObject({ retryable: true });
      }
    } finally {
      queue.close();
      await backend.close();
      offline.disconnect();
    }
  });

  it('a frozen server: commands, scripts, queue calls, limiter decisions and close() are bounded', async () => {
    const owned = (await createCacheService({
      redis: server.url,
      commandTimeoutMs: 200,
    })) as RedisBackend;
    const client = new Redis(server.url, { maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    const given = new RedisBackend({ redis: client, commandTimeoutMs: 200 });
    const queue = streamQueue(client, 'frozen', 200);
    const limiter = new RateLimiter({ store: given, perKey: { rate: 1, burst: 1 } });
    await given.connect();
    await queue.start();
    server.pause();
    let resumed = false;
    try {
      const settled = await Promise.allSettled([
        owned.get('k'),
        given.get('k'),
        given.runScript('rate_limit_gcra', ['a'], ['', 1, 0, 0, 1000, 1000, 0, 1]),
        queue.push('m'),
        limiter.acquire('k', { maxWaitMs: 100 }),
      ]);
      // everything settled while the server was still frozen
      expect(resumed).toBe(false);
      const codes = settled.map((s) =>
        s.status === 'rejected' ? (s.reason as { code?: string }).code : 'fulfilled',
      );
      expect(codes).toEqual([
        'BACKEND_UNAVAILABLE',
        'BACKEND_UNAVAILABLE',
        'BACKEND_UNAVAILABLE',
        'BACKEND_UNAVAILABLE',
        'RATE_LIMITED',
      ]);
      // a script that timed out may have run: the error says so, and it was not sent again
      const script = (settled[2] as PromiseRejectedResult).reason as { context: object };
      expect(script.context).toMatchObject({ mayHaveRun: true, script: 'rate_limit_gcra' });
      // close() does not wait for a server that does not answer
      await owned.close();
      expect(resumed).toBe(false);
      // …and lets go of the connection
      await new Promise<void>((resolve) => {
        if (owned.client.status === 'end') resolve();
        else owned.client.once('end', () => resolve());
      });
      expect(owned.client.status).toBe('end');
    } finally {
      resumed = true;
      server.resume();
      queue.close();
      await given.close();
      client.disconnect();
    }
  });

  it('out of memory: plain commands, scripts and queue pushes give BACKEND_OUT_OF_MEMORY', async () => {
    const admin = new Redis(server.url);
    const backend = new RedisBackend({ redis: server.url });
    const client = new Redis(server.url);
    const queue = streamQueue(client, 'oom');
    try {
      await backend.connect();
      await queue.start();
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
      const errors = [
        await failure(backend.set('k', 'v')),
        await failure(backend.runScript('rate_limit_gcra', ['a'], ['', 1, 0, 0, 1000, 1000, 0, 1])),
        await failure(queue.push('m')),
      ];
      for (const error of errors) {
        expect(isMocraError(error, ErrorCode.BACKEND_OUT_OF_MEMORY)).toBe(true);
        expect(error).toMatchObject({ retryable: true });
      }
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      queue.close();
      await backend.close();
      client.disconnect();
      admin.disconnect();
    }
  });
});
