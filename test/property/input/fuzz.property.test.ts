/**
 * Input fuzzing of the public entry points: random junk — prototype keys, objects without a
 * prototype, Proxies whose traps throw, getters that throw, deep arrays, NaN, symbols, bigints —
 * either succeeds or fails with a MocraError carrying a code. Never a TypeError or RangeError
 * (nor a user trap's own error), and never a wedge: a scheduler always drains and shuts down.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../../src/chain/engine/download.js';
import { normalizeMessage } from '../../../src/chain/messages.js';
import { MemoryQueue } from '../../../src/chain/queue.js';
import { canonicalKey } from '../../../src/cache/canonical-key.js';
import { isMocraError } from '../../../src/errors.js';
import { ChainKeyBuilder, escapeKeyPart } from '../../../src/keys/chain-key-builder.js';
import { consoleLogger } from '../../../src/observe/logger.js';
import { InMemoryMetrics } from '../../../src/observe/metrics.js';
import { RateLimiter } from '../../../src/rate-limit/index.js';
import { RetryPolicy } from '../../../src/retry/index.js';
import { createScheduler } from '../../../src/scheduler/index.js';
import { createCacheService } from '../../../src/store/create.js';
import { jsonStore } from '../../../src/store/json.js';
import { keySlot } from '../../../src/store/key-slot.js';
import { LocalBackend } from '../../../src/store/local-backend.js';

const PROTO_KEYS = [
  'constructor',
  '__proto__',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  '__defineGetter__',
  'prototype',
];

/** A Proxy whose traps throw (symbol reads are let through: fast-check looks for its own). */
function throwingProxy(): object {
  const fail = (): never => {
    throw new Error('trap says no');
  };
  const failOnStrings = (_: object, name: string | symbol): undefined => {
    if (typeof name === 'symbol') return undefined;
    return fail();
  };
  const hasFails = (_: object, name: string | symbol): boolean => {
    if (typeof name === 'symbol') return false;
    return fail();
  };
  return new Proxy(
    {},
    {
      get: failOnStrings,
      has: hasFails,
      ownKeys: fail,
      getOwnPropertyDescriptor: fail,
      getPrototypeOf: fail,
      set: fail,
      defineProperty: fail,
    },
  );
}

function throwingGetters(names: string[]): object {
  const target: Record<string, unknown> = {};
  for (const name of names) {
    Object.defineProperty(target, name, {
      enumerable: true,
      get() {
        throw new RangeError(`getter ${name} says no`);
      },
    });
  }
  return target;
}

function deepArray(depth: number): unknown[] {
  let value: unknown[] = [];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

/** Junk of every kind, including the shapes that used to break validation. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ withNullPrototype: true, withBigInt: true, withMap: true, withSet: true }),
  fc.constantFrom(...PROTO_KEYS),
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 0.5, -1, 2 ** 60, Symbol('s'), 10n, null),
  fc.constant(undefined),
  fc.constant(Object.create(null) as object),
  fc.constant(0).map(() => throwingProxy()),
  fc
    .subarray(['priority', 'cost', 'key', 'signal', 'ttlMs', 'maxWaitMs', 'logger', 'id'])
    .map((names) => throwingGetters(names)),
  fc.constantFrom(20_000, 300).map((d) => deepArray(d)),
  fc.dictionary(fc.constantFrom(...PROTO_KEYS, 'a', 'kind', 'body'), fc.anything()),
  fc.constant(() => {}),
);

/** What a call did: nothing thrown, or what it threw (sync or async). */
async function outcome(call: () => unknown): Promise<unknown> {
  try {
    const result = call();
    if (result !== null && typeof result === 'object' && 'then' in result) await result;
    return undefined;
  } catch (error) {
    return error ?? new Error('threw a nullish value');
  }
}

function expectMocraOrNothing(error: unknown, where: string): void {
  if (error === undefined) return;
  const described = `${where} threw ${(error as Error)?.name ?? typeof error}: ${(error as Error)?.message ?? String(error)}`;
  expect(isMocraError(error) && typeof error.code === 'string', described).toBe(true);
}

const RUNS = { numRuns: 150 };

describe('input fuzzing of the public entry points', () => {
  it('the scheduler: submit, on, shutdown and options never throw raw errors nor wedge', async () => {
    await fc.assert(
      fc.asyncProperty(junk, junk, junk, async (options, event, submitOptions) => {
        expectMocraOrNothing(
          await outcome(() => createScheduler(options as never)),
          'createScheduler',
        );
        const scheduler = createScheduler({ maxConcurrent: 2 });
        expectMocraOrNothing(await outcome(() => scheduler.on(event as never, () => {})), 'on');
        expectMocraOrNothing(
          await outcome(() => scheduler.on('idle', event as never)),
          'on(listener)',
        );
        for (const priority of [event, ...PROTO_KEYS]) {
          const result = await outcome(() => scheduler.run(async () => 1, { priority } as never));
          expectMocraOrNothing(result, `submit({ priority })`);
        }
        expectMocraOrNothing(
          await outcome(() => scheduler.run(async () => 1, submitOptions as never)),
          'submit',
        );
        expectMocraOrNothing(
          await outcome(() => scheduler.shutdown(submitOptions as never)),
          'shutdown',
        );
        // never a wedge: what was submitted drains
        await scheduler.onIdle();
        await scheduler.shutdown();
      }),
      RUNS,
    );
  });

  it('retry, keys, cache keys, metrics, messages and loggers', async () => {
    await fc.assert(
      fc.asyncProperty(junk, junk, async (a, b) => {
        const policy = new RetryPolicy({ maxRetries: 2 });
        const metrics = new InMemoryMetrics();
        const calls: [string, () => unknown][] = [
          ['new RetryPolicy', () => new RetryPolicy(a as never)],
          ['delayFor', () => policy.delayFor(a as never)],
          ['delayFor(previousMs)', () => policy.delayFor(1, undefined, b as never)],
          ['parseRetryAfter', () => parseRetryAfter(a as never)],
          ['escapeKeyPart', () => escapeKeyPart(a as never)],
          ['keySlot', () => keySlot(a as never)],
          ['canonicalKey', () => canonicalKey(a)],
          ['metrics.increment', () => metrics.increment('c', a as never)],
          ['metrics.increment(labels)', () => metrics.increment('c', { l: a } as never)],
          ['normalizeMessage', () => normalizeMessage(a)],
          ['normalizeMessage(body)', () => normalizeMessage({ kind: 'task', body: a })],
          ['new ChainKeyBuilder', () => new ChainKeyBuilder(a as never)],
          ['ptmKey', () => new ChainKeyBuilder().ptmKey(a as never)],
          ['consoleLogger', () => consoleLogger(a as never)],
          ['jsonStore', () => jsonStore(a as never, b as never)],
        ];
        for (const [where, call] of calls) expectMocraOrNothing(await outcome(call), where);
      }),
      RUNS,
    );
  });

  it('the local store, its factory, the memory queue and the rate limiter', async () => {
    const store = new LocalBackend({ sweepIntervalMs: 0 });
    const queue = new MemoryQueue<number>({ name: 'q', capacity: 1_000_000 });
    const limiter = new RateLimiter({ perKey: { rate: 1_000_000, burst: 1_000 } });
    await fc.assert(
      fc.asyncProperty(junk, junk, junk, async (a, b, c) => {
        const calls: [string, () => unknown][] = [
          ['new LocalBackend', () => new LocalBackend(a as never).close()],
          ['createCacheService', async () => (await createCacheService(a as never)).close()],
          ['get', () => store.get(a as never)],
          ['set', () => store.set(a as never, b as never, c as never)],
          ['set(options)', () => store.set('k', 'v', a as never)],
          ['setNX', () => store.setNX('k', b as never, c as never)],
          ['del', () => store.del(a as never, b as never)],
          ['incr', () => store.incr('n', a as never)],
          ['mget', () => store.mget(a as never)],
          ['expire', () => store.expire('k', a as never)],
          ['zadd', () => store.zadd('z', a as never, b as never)],
          ['zrangeByScore', () => store.zrangeByScore('z', 0, 1, a as never)],
          [
            'scan',
            async () => {
              for await (const _ of store.scan(a as never)) void _;
            },
          ],
          ['new MemoryQueue', () => new MemoryQueue(a as never)],
          ['queue.push', () => queue.push(1, a as never)],
          ['queue.receive', async () => (await queue.receive(a as never))?.ack()],
          ['new RateLimiter', () => new RateLimiter(a as never)],
          ['acquire', () => limiter.acquire(a as never, b as never)],
          ['acquire(options)', () => limiter.acquire('k', a as never)],
        ];
        for (const [where, call] of calls) expectMocraOrNothing(await outcome(call), where);
      }),
      RUNS,
    );
    await store.close();
  });
});
