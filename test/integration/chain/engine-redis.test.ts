import { randomBytes } from 'node:crypto';
import { RedisBackend } from '../../../src/index.js';
import { runChainEngineScenarios, type EngineFixture } from '../../conformance/chain-engine.js';
import { redisUrl } from '../../helpers/redis.js';

async function redisFixture(volatileQueues = false): Promise<EngineFixture> {
  const store = new RedisBackend({
    redis: redisUrl()!,
    keyPrefix: `mocra-test:${randomBytes(6).toString('hex')}:`,
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
