/**
 * Model-based differential test: random command sequences run on LocalBackend and on a real
 * Redis must give the same answer (value or error code) at every step.
 */
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isMocraError } from '../../../src/errors.js';
import { LocalBackend } from '../../../src/store/local-backend.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import type { CacheService } from '../../../src/store/types.js';
import { describeRedis, redisUrl } from '../../helpers/redis.js';

type Cmd =
  | ['get', string]
  | ['set', string, string, number | undefined]
  | ['setNX', string, string, number | undefined]
  | ['del', string[]]
  | ['incr', string, number | undefined]
  | ['mget', string[]]
  | ['expire', string, number]
  | ['ttl', string]
  | ['zadd', string, number, string]
  | ['zrange', string, number, number, number | undefined, number | undefined]
  | ['zrem', string, number, number]
  | ['scan', string];

const key = fc.constantFrom('a', 'b', 'c', 'z1', 'z2');
const value = fc.constantFrom('0', '1', '-7', '42', '1.5', 'x', '', '007', '9223372036854775806');
const ttl = fc.option(fc.constantFrom(60_000, 120_000), { nil: undefined });
const score = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.constantFrom(0.5, -0.25, 1e-3, Infinity, -Infinity, 2.5),
);
const member = fc.constantFrom('m', 'n', 'o', 'é', 'M');
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  key.map((k): Cmd => ['get', k]),
  fc.tuple(key, value, ttl).map(([k, v, t]): Cmd => ['set', k, v, t]),
  fc.tuple(key, value, ttl).map(([k, v, t]): Cmd => ['setNX', k, v, t]),
  fc.array(key, { minLength: 1, maxLength: 3 }).map((ks): Cmd => ['del', ks]),
  fc
    .tuple(key, fc.option(fc.integer({ min: -5, max: 5 }), { nil: undefined }))
    .map(([k, b]): Cmd => ['incr', k, b]),
  fc.array(key, { maxLength: 4 }).map((ks): Cmd => ['mget', ks]),
  fc.tuple(key, fc.constantFrom(30_000, 90_000)).map(([k, t]): Cmd => ['expire', k, t]),
  key.map((k): Cmd => ['ttl', k]),
  fc.tuple(key, score, member).map(([k, s, m]): Cmd => ['zadd', k, s, m]),
  fc
    .tuple(
      key,
      score,
      score,
      fc.option(fc.nat(3), { nil: undefined }),
      fc.option(fc.nat(3), { nil: undefined }),
    )
    .map(([k, a, b, o, c]): Cmd => ['zrange', k, a, b, o, c]),
  fc.tuple(key, score, score).map(([k, a, b]): Cmd => ['zrem', k, a, b]),
  fc.constantFrom('', 'z', 'a').map((p): Cmd => ['scan', p]),
);

async function apply(s: CacheService, c: Cmd): Promise<unknown> {
  try {
    switch (c[0]) {
      case 'get':
        return await s.get(c[1]);
      case 'set':
        return await s.set(c[1], c[2], c[3] === undefined ? undefined : { ttlMs: c[3] });
      case 'setNX':
        return await s.setNX(c[1], c[2], c[3] === undefined ? undefined : { ttlMs: c[3] });
      case 'del':
        return await s.del(...c[1]);
      case 'incr':
        return await s.incr(c[1], c[2]);
      case 'mget':
        return await s.mget(c[1]);
      case 'expire':
        return await s.expire(c[1], c[2]);
      case 'ttl': {
        const t = await s.ttl(c[1]);
        return t > 0 ? `~${Math.round(t / 10_000)}` : t; // compare TTLs to 10 s
      }
      case 'zadd':
        return await s.zadd(c[1], c[2], c[3]);
      case 'zrange': {
        const options: { offset?: number; count?: number } = {};
        if (c[4] !== undefined) options.offset = c[4];
        if (c[5] !== undefined) options.count = c[5];
        return await s.zrangeByScore(c[1], c[2], c[3], options);
      }
      case 'zrem':
        return await s.zremRangeByScore(c[1], c[2], c[3]);
      case 'scan': {
        const out: string[] = [];
        for await (const k of s.scan(c[1])) out.push(k);
        return out.sort();
      }
    }
  } catch (error) {
    if (isMocraError(error)) return { error: error.code };
    throw error;
  }
}

describeRedis('CacheService differential model test (LocalBackend vs Redis)', () => {
  let redis: RedisBackend;
  beforeAll(async () => {
    redis = new RedisBackend({
      redis: redisUrl()!,
      keyPrefix: `mocra-test-${randomBytes(6).toString('hex')}:`,
    });
    await redis.connect();
  });
  afterAll(async () => {
    for await (const k of redis.scan('')) await redis.del(k);
    await redis.close();
  });

  it('gives identical answers for random command sequences', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 40 }), async (cmds) => {
        const ns = `r${run++}:`;
        const local = new LocalBackend({ sweepIntervalMs: 0 });
        try {
          for (const c of cmds) {
            const scoped = scope(c, ns);
            const [l, r] = [await apply(local, scoped), await apply(redis, scoped)];
            expect({ cmd: c, result: l }).toEqual({ cmd: c, result: r });
          }
        } finally {
          await local.close();
          for await (const k of redis.scan(ns)) await redis.del(k);
        }
      }),
      { numRuns: 150 },
    );
  });
});

/** Puts a command's keys in a namespace of their own so runs do not see each other. */
function scope(c: Cmd, ns: string): Cmd {
  const copy = [...c] as Cmd;
  switch (copy[0]) {
    case 'del':
    case 'mget':
      copy[1] = (copy[1] as string[]).map((k) => ns + k);
      break;
    case 'scan':
      copy[1] = ns + copy[1];
      break;
    default:
      copy[1] = ns + (copy[1] as string);
  }
  return copy;
}
