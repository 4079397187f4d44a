import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  createChainEngine,
  createRedisStreamQueues,
  defineModule,
  LocalBackend,
  RedisBackend,
} from '../../../src/index.js';
import { runChainEngineScenarios } from '../../conformance/chain-engine.js';
import { runChainEngineDefectScenarios } from '../../conformance/chain-engine-defects.js';
import { redisUrl } from '../../helpers/redis.js';

async function redisFixture() {
  const store = new RedisBackend({
    redis: redisUrl()!,
    keyPrefix: `mocra-test-${randomBytes(6).toString('hex')}:`,
  });
  await store.connect();
  return {
    store,
    cleanup: async () => {
      for await (const key of store.scan('')) await store.del(key);
      await store.close();
    },
  };
}

if (redisUrl()) {
  runChainEngineScenarios('RedisBackend (in-process queues)', redisFixture);
  runChainEngineDefectScenarios('RedisBackend (in-process queues)', redisFixture);
}

describe.skipIf(!redisUrl())('chain engine: queues and store must agree', () => {
  it('refuses a single-node store with shared Redis Stream queues (ConfigError naming queues)', async () => {
    const client = new Redis(redisUrl()!, { lazyConnect: true });
    try {
      const queues = createRedisStreamQueues({ client, keyPrefix: 'mocra-test:agree:' });
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
      const store = new RedisBackend({ redis: redisUrl()!, keyPrefix: 'mocra-test:agree:' });
      const engine = createChainEngine({ modules, store, queues });
      expect(engine.runtimeMode).toBe('distributed');
      await store.close();
    } finally {
      client.disconnect();
    }
  });
});
