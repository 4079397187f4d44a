/**
 * bench/store: LocalBackend beside ioredis-mock and a plain async Map (get/set); the workload of
 * issue 20 (`createCacheService()` with no options, `await set(k, 'v' + i)` then `await get(k)`
 * over 5,000 keys) with the retained bytes per key; and RedisBackend beside raw ioredis at
 * concurrency 100 on a private redis-server.
 *
 *   node --expose-gc --import tsx bench/store/index.ts
 */
import { Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { LocalBackend, RedisBackend, createCacheService } from '../../src/index.js';
import { startRedisServer } from '../../test/helpers/redis-server.js';
import {
  compareThroughput,
  printCase,
  retainedBytes,
  writeResults,
  type CaseResult,
} from '../lib/harness.js';

const OPS = Number(process.env.BENCH_STORE_OPS ?? 50_000);
const REDIS_OPS = Number(process.env.BENCH_STORE_REDIS_OPS ?? 20_000);
const CONCURRENCY = 100;
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const keys = Array.from({ length: 1_000 }, (_, i) => `k${i}`);

const local = new LocalBackend({ keyPrefix: 'b:' });
const mock = new RedisMock();
const map = new Map<string, string>();
const asyncMap = {
  get: async (k: string) => map.get(k) ?? null,
  set: async (k: string, v: string) => void map.set(k, v),
};

async function mixed(
  get: (k: string) => Promise<unknown>,
  set: (k: string, v: string) => Promise<unknown>,
  ops: number,
): Promise<number> {
  for (let i = 0; i < ops; i++) {
    const k = keys[i % keys.length]!;
    if (i % 4 === 0) await set(k, 'value');
    else await get(k);
  }
  return ops;
}

const cases: CaseResult[] = [];
const inProcess = await compareThroughput(
  `in-process get/set (3:1), ${OPS.toLocaleString('en-US')} sequential ops`,
  [
    {
      name: 'mocra LocalBackend',
      round: () =>
        mixed(
          (k) => local.get(k),
          (k, v) => local.set(k, v),
          OPS,
        ),
    },
    {
      name: 'ioredis-mock',
      round: () =>
        mixed(
          (k) => mock.get(k),
          (k, v) => mock.set(k, v),
          OPS,
        ),
    },
    { name: 'async Map (floor)', round: () => mixed(asyncMap.get, asyncMap.set, OPS) },
  ],
  { rounds },
);
printCase(inProcess, 'ioredis-mock');
cases.push(inProcess);

// as a user writes it: the default service, a write then a read of each of 5,000 keys
const USER_KEYS = 5_000;
const userKeys = Array.from({ length: USER_KEYS }, (_, i) => `key-${i}`);
const service = await createCacheService();
const userMock = new RedisMock();
const userCase = await compareThroughput(
  `createCacheService(): await set(k, 'v' + i) then await get(k), ${USER_KEYS.toLocaleString('en-US')} keys`,
  [
    {
      name: 'mocra createCacheService() (LocalBackend)',
      round: async () => {
        for (let i = 0; i < USER_KEYS; i++) {
          await service.set(userKeys[i]!, 'v' + i);
          await service.get(userKeys[i]!);
        }
        return 2 * USER_KEYS;
      },
    },
    {
      name: 'ioredis-mock set/get',
      round: async () => {
        for (let i = 0; i < USER_KEYS; i++) {
          await userMock.set(userKeys[i]!, 'v' + i);
          await userMock.get(userKeys[i]!);
        }
        return 2 * USER_KEYS;
      },
    },
  ],
  // a round is short: more of them
  { rounds: rounds * 4, warmup: 4 },
);
printCase(userCase, 'ioredis-mock set/get');
cases.push(userCase);
const BYTES_KEYS = 50_000;
const valueOf = (i: number): string => `value-${i}`.padEnd(16, '.');
const localBytes = await retainedBytes(BYTES_KEYS, (n) => {
  const s = new LocalBackend({ sweepIntervalMs: 0 });
  for (let i = 0; i < n; i++) s.store.set(`key-${i}`, valueOf(i));
  return s;
});
const mockBytes = await retainedBytes(BYTES_KEYS, (n) => {
  const m = new RedisMock();
  for (let i = 0; i < n; i++) void m.set(`key-${i}`, valueOf(i));
  return m;
});
console.log(
  `\nretained bytes per key (16-char values, keys and values included): LocalBackend ${Math.round(localBytes)}, ioredis-mock ${Math.round(mockBytes)}`,
);

const server = await startRedisServer();
const raw = new Redis(server.url);
const backend = new RedisBackend({ redis: server.url, keyPrefix: 'b:' });
await backend.connect();

async function concurrent(fn: (i: number) => Promise<unknown>, ops: number): Promise<number> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ops) await fn(next++);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return ops;
}

try {
  const redisCase = await compareThroughput(
    `Redis get/set (3:1), ${REDIS_OPS.toLocaleString('en-US')} ops at concurrency ${CONCURRENCY}`,
    [
      {
        name: 'raw ioredis',
        round: () =>
          concurrent(
            (i) =>
              i % 4 === 0
                ? raw.set(`b:${keys[i % 1000]}`, 'value')
                : raw.get(`b:${keys[i % 1000]}`),
            REDIS_OPS,
          ),
      },
      {
        name: 'mocra RedisBackend',
        round: () =>
          concurrent(
            (i) =>
              i % 4 === 0 ? backend.set(keys[i % 1000]!, 'value') : backend.get(keys[i % 1000]!),
            REDIS_OPS,
          ),
      },
    ],
    { rounds },
  );
  printCase(redisCase, 'raw ioredis');
  cases.push(redisCase);
  const ratio = (c: CaseResult, a: string, b: string): number =>
    c.rows.find((r) => r.name === a)!.median / c.rows.find((r) => r.name === b)!.median;
  writeResults('store', cases, {
    'LocalBackend / ioredis-mock': Number(
      ratio(inProcess, 'mocra LocalBackend', 'ioredis-mock').toFixed(2),
    ),
    'users workload: createCacheService() / ioredis-mock (target >= 5)': Number(
      ratio(userCase, 'mocra createCacheService() (LocalBackend)', 'ioredis-mock set/get').toFixed(
        2,
      ),
    ),
    'retained bytes per key, LocalBackend': Math.round(localBytes),
    'retained bytes per key, ioredis-mock': Math.round(mockBytes),
    'RedisBackend overhead vs raw ioredis (%)': Number(
      ((1 - ratio(redisCase, 'mocra RedisBackend', 'raw ioredis')) * 100).toFixed(1),
    ),
  });
} finally {
  await backend.close();
  raw.disconnect();
  mock.disconnect();
  await local.close();
  await service.close();
  userMock.disconnect();
  await server.stop();
}
