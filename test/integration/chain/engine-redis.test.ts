import { randomBytes } from 'node:crypto';
import { RedisBackend } from '../../../src/index.js';
import { runChainEngineScenarios } from '../../conformance/chain-engine.js';
import { redisUrl } from '../../helpers/redis.js';

if (redisUrl()) {
  runChainEngineScenarios('RedisBackend (in-process queues)', async () => {
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
  });
}
