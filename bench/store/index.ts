/**
 * bench/store: LocalBackend beside ioredis-mock and a plain async Map (get/set), and
 * RedisBackend beside raw ioredis at concurrency 100 on a private redis-server.
 *
 *   node --expose-gc --import tsx bench/store/index.ts
 */
import { Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { LocalBackend, RedisBackend } from '../../src/index.js';
import { startRedisServer } from '../../test/helpers/redis-server.js';
import { compareThroughput, printCase, writeResults, type CaseResult } from '../lib/harness.js';

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
    'RedisBackend overhead vs raw ioredis (%)': Number(
      ((1 - ratio(redisCase, 'mocra RedisBackend', 'raw ioredis')) * 100).toFixed(1),
    ),
  });
} finally {
  await backend.close();
  raw.disconnect();
  mock.disconnect();
  await local.close();
  await server.stop();
}
