/**
 * Model-based test with time: random command sequences with short TTLs and clock ticks run on
 * the durable backend and on LocalBackend (itself checked against Redis in differential.test.ts)
 * on one manual clock; every answer, expiry and sweep must agree.
 */
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { isMocraError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { DurableBackend } from '../../../src/store/durable/durable-backend.js';
import { LocalBackend } from '../../../src/store/local-backend.js';
import { removeTempDataDirs, tempDataDir } from '../../helpers/durable.js';

afterAll(removeTempDataDirs);

type Cmd =
  | ['get' | 'ttl' | 'zall', string]
  | ['set' | 'setNX', string, string, number | undefined]
  | ['del', string[]]
  | ['incr', string, number]
  | ['expire', string, number]
  | ['zadd', string, number, string]
  | ['zrange', string, number, number, number, number]
  | ['zrem', string, number, number]
  | ['scan', string]
  | ['tick', number]
  | ['sweep']
  | ['reopen'];

const key = fc.constantFrom('a', 'b', 'z1', 'z2');
const ttl = fc.option(fc.constantFrom(5, 20, 50), { nil: undefined });
const score = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(0.5, Infinity, -Infinity));
const member = fc.oneof(
  fc.constantFrom('m', 'n', 'é', '😀', ''),
  fc.constantFrom('p', 'q').map((c) => 'L'.repeat(1030) + c), // past the key prefix
);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.tuple(fc.constantFrom('get', 'ttl', 'zall') as fc.Arbitrary<'get'>, key),
  fc.tuple(
    fc.constantFrom('set', 'setNX') as fc.Arbitrary<'set'>,
    key,
    fc.constantFrom('1', 'x', '-2'),
    ttl,
  ),
  fc.array(key, { minLength: 1, maxLength: 3 }).map((ks): Cmd => ['del', ks]),
  fc.tuple(key, fc.integer({ min: -3, max: 3 })).map(([k, b]): Cmd => ['incr', k, b]),
  fc.tuple(key, fc.constantFrom(5, 30)).map(([k, t]): Cmd => ['expire', k, t]),
  fc.tuple(key, score, member).map(([k, s, m]): Cmd => ['zadd', k, s, m]),
  fc
    .tuple(key, score, score, fc.nat(2), fc.integer({ min: -1, max: 3 }))
    .map(([k, a, b, o, c]): Cmd => ['zrange', k, a, b, o, c]),
  fc.tuple(key, score, score).map(([k, a, b]): Cmd => ['zrem', k, a, b]),
  fc.constantFrom('', 'z').map((p): Cmd => ['scan', p]),
  fc.constantFrom(1, 5, 20, 40).map((ms): Cmd => ['tick', ms]),
  fc.constant<Cmd>(['sweep']),
  fc.constant<Cmd>(['reopen']),
);

type Store = LocalBackend['store'] | DurableBackend['store'];

function apply(s: Store, c: Cmd): unknown {
  try {
    switch (c[0]) {
      case 'get':
        return s.get(c[1]);
      case 'ttl':
        return s.ttl(c[1]);
      case 'zall':
        return s.zrangeByScore(c[1], -Infinity, Infinity);
      case 'set':
        return s.set(c[1], c[2], c[3]);
      case 'setNX':
        return s.setNX(c[1], c[2], c[3]);
      case 'del':
        return s.del(...c[1]);
      case 'incr':
        return s.incr(c[1], c[2]);
      case 'expire':
        return s.expire(c[1], c[2]);
      case 'zadd':
        return s.zadd(c[1], c[2], c[3]);
      case 'zrange':
        return s.zrangeByScore(c[1], c[2], c[3], c[4], c[5]);
      case 'zrem':
        return s.zremRangeByScore(c[1], c[2], c[3]);
      case 'scan':
        return s.keys(c[1]).sort();
      default:
        return undefined;
    }
  } catch (error) {
    if (isMocraError(error)) return { error: error.code };
    throw error;
  }
}

it('answers like LocalBackend under TTLs, clock ticks, sweeps and reopening', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 50 }), async (cmds) => {
      const clock = new ManualClock(1_000);
      const path = tempDataDir('model');
      const local = new LocalBackend({ clock, sweepIntervalMs: 0 });
      let durable = await DurableBackend.open({ path, clock, sweepIntervalMs: 0 });
      try {
        for (const c of cmds) {
          if (c[0] === 'tick') clock.advance(c[1]);
          else if (c[0] === 'sweep') {
            local.store.sweep();
            durable.store.sweep();
          } else if (c[0] === 'reopen') {
            await durable.close();
            durable = await DurableBackend.open({ path, clock, sweepIntervalMs: 0 });
          } else {
            expect({ cmd: c, result: apply(durable.store, c) }).toEqual({
              cmd: c,
              result: apply(local.store, c),
            });
          }
        }
      } finally {
        await local.close();
        await durable.close();
      }
    }),
    { numRuns: 150 },
  );
});
