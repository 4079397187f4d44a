import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import {
  ConfigError,
  createChainEngine,
  createRedisStreamQueues,
  defineModule,
  LocalBackend,
  namespacePrefix,
  RedisBackend,
} from '../../../src/index.js';
import { runChainEngineScenarios, type EngineFixture } from '../../conformance/chain-engine.js';
import { runChainEngineDefectScenarios } from '../../conformance/chain-engine-defects.js';
import { redisUrl } from '../../helpers/redis.js';

async function redisFixture(volatileQueues = false): Promise<EngineFixture> {
  const store = new RedisBackend({
    redis: redisUrl()!,
    keyPrefix: `mocra-test-${randomBytes(6).toString('hex')}:`,
  });
  await store.connect();
  return {
    store,
    volatileQueues,
    cleanup: async () => {
      for await (const key of store.scan('')) await store.del(key);
      await store.close();
    },
  };
}

if (redisUrl()) {
  // the default: the queues follow the store (Redis Streams on its client and keyPrefix)
  runChainEngineScenarios('RedisBackend (Redis Stream queues, the default)', () => redisFixture());
  // in-process queues over Redis: accepted only with allowVolatileQueues
  runChainEngineScenarios('RedisBackend (in-process queues, allowVolatileQueues)', () =>
    redisFixture(true),
  );
}

if (redisUrl()) {
  // the defects run on in-process queues: what they check lives in one process (15: login info
  // pruned at a run's end, which only this process can tell with its queues in memory)
  runChainEngineDefectScenarios('RedisBackend (in-process queues, allowVolatileQueues)', () =>
    redisFixture(true),
  );
}

describe.skipIf(!redisUrl())('chain engine: queues and store must agree', () => {
  it('refuses a single-node store with shared Redis Stream queues (ConfigError naming queues)', async () => {
    const client = new Redis(redisUrl()!, { lazyConnect: true });
    try {
      const queues = createRedisStreamQueues({ client, keyPrefix: 'mocra-test-agree:' });
      const modules = [
        defineModule({ id: 'm', steps: [{ name: 's', generate: () => [], parse: () => ({}) }] }),
      ];
      let caught: unknown;
      try {
        createChainEngine({ modules, store: new LocalBackend(), queues });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).context).toMatchObject({ field: 'queues.task' });
      expect((caught as Error).message).toMatch(/queues\.task.*single-node/);
      // the same queues on a Redis store are what many processes need: accepted
      const store = new RedisBackend({ redis: redisUrl()!, keyPrefix: 'mocra-test-agree:' });
      const engine = createChainEngine({ modules, store, queues });
      expect(engine.runtimeMode).toBe('distributed');
      await store.close();
    } finally {
      client.disconnect();
    }
  });
});

describe.skipIf(!redisUrl())('chain engine: the default queues share the store namespace', () => {
  it('a keyPrefix holding `:` puts the default stream queues beside the state, not under a prefix escaped twice', async () => {
    const prefix = `mocra-test-${randomBytes(6).toString('hex')}:eu:`;
    const namespace = namespacePrefix(prefix); // what the store's keys and the CLI's start with
    const store = new RedisBackend({ redis: redisUrl()!, keyPrefix: prefix });
    await store.connect();
    const client = new Redis(redisUrl()!);
    const modules = [
      defineModule({ id: 'm', steps: [{ name: 's', generate: () => [], parse: () => ({}) }] }),
    ];
    // never started: the task message stays in the task stream
    const engine = createChainEngine({ modules, store });
    try {
      await engine.submit({ taskId: 't', account: 'a', platform: 'p', modules: ['m'] });
      expect(store.keyPrefix).toBe(namespace);
      expect(await client.xlen(`${namespace}chain:queue:task`)).toBe(1);
      // the queues a worker makes itself with the same keyPrefix, as the docs show, are the same
      const own = createRedisStreamQueues({ client, keyPrefix: prefix, consumer: 'w' });
      await own.task.push('{}');
      expect(await client.xlen(`${namespace}chain:queue:task`)).toBe(2);
      await Promise.all([own.task.shutdown(), own.parser.shutdown(), own.error.shutdown()]);
    } finally {
      await engine.close();
      for (const key of await client.keys(`${prefix.split(':')[0]}*`)) await client.del(key);
      await store.close();
      client.disconnect();
    }
  });
});

describe.skipIf(!redisUrl())('chain engine on Redis Stream queues: secrets at rest', () => {
  it('a malformed task never leaves its loginInfo in the dead-letter stream', async () => {
    const prefix = `mocra-test-${randomBytes(6).toString('hex')}:`;
    const client = new Redis(redisUrl()!);
    const store = new RedisBackend({ redis: redisUrl()!, keyPrefix: prefix });
    await store.connect();
    const queues = createRedisStreamQueues({ client, keyPrefix: prefix, blockMs: 50 });
    const modules = [
      defineModule({ id: 'm', steps: [{ name: 's', generate: () => [], parse: () => ({}) }] }),
    ];
    const engine = createChainEngine({ modules, store, queues });
    try {
      await engine.start();
      const secret = { password: 'hunter2-secret' };
      const task = { taskId: 't', account: 'a', platform: 'p', modules: ['m'] };
      // pushed by another producer, straight onto the stream
      await queues.task.push(
        JSON.stringify({ kind: 'task', body: { ...task, taskId: 7, loginInfo: secret } }),
      );
      // and through the engine
      await engine.publish({ kind: 'task', body: { ...task, modules: [], loginInfo: secret } });
      await vi.waitFor(async () => expect(await queues.task.deadLetters()).toHaveLength(2), {
        timeout: 5000,
      });
      const dead = await queues.task.deadLetters();
      expect(dead.map((d) => d.reason)).toEqual([
        expect.stringMatching(/`taskId`/),
        expect.stringMatching(/`modules`/),
      ]);
      expect(JSON.stringify(dead)).not.toContain('hunter2');
      expect(JSON.stringify(engine.deadLetters())).not.toContain('hunter2');
    } finally {
      await engine.stop();
      await Promise.all([
        queues.task.shutdown(),
        queues.parser.shutdown(),
        queues.error.shutdown(),
      ]);
      for await (const key of store.scan('')) await store.del(key);
      for (const key of await client.keys(`${prefix}*`)) await client.del(key);
      await store.close();
      client.disconnect();
    }
  });
});

describe.skipIf(!redisUrl())('chain engine: queues whose claimIdleMs is not above leaseMs', () => {
  it('start() warns, naming both (a dead worker’s node met LOCKED_BY_OTHER would be dropped); the defaults do not', async () => {
    const prefix = `mocra-test-${randomBytes(6).toString('hex')}:`;
    const store = new RedisBackend({ redis: redisUrl()!, keyPrefix: prefix });
    await store.connect();
    const client = new Redis(redisUrl()!);
    const modules = [
      defineModule({ id: 'm', steps: [{ name: 's', generate: () => [], parse: () => ({}) }] }),
    ];
    const warnings: string[] = [];
    const logger = {
      debug: () => {},
      info: () => {},
      warn: (fields: object, message: string) =>
        warnings.push(`${message} ${JSON.stringify(fields)}`),
      error: () => {},
    };
    try {
      for (const [claimIdleMs, warned] of [
        [1_000, true],
        [undefined, false],
      ] as const) {
        warnings.length = 0;
        const queues = createRedisStreamQueues({
          client,
          keyPrefix: prefix,
          consumer: 'w',
          ...(claimIdleMs === undefined ? {} : { claimIdleMs }),
        });
        const engine = createChainEngine({ modules, store, queues, logger, leaseMs: 5_000 });
        await engine.start();
        await engine.stop();
        await Promise.all([
          queues.task.shutdown(),
          queues.parser.shutdown(),
          queues.error.shutdown(),
        ]);
        const line = warnings.find((w) => w.includes('claimIdleMs'));
        if (warned) expect(line).toMatch(/"claim_idle_ms":1000.*"lease_ms":5000/);
        else expect(line).toBeUndefined();
      }
    } finally {
      for (const key of await client.keys(`${prefix}*`)) await client.del(key);
      await store.close();
      client.disconnect();
    }
  });
});
