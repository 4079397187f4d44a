import { randomBytes } from 'node:crypto';
import { RedisChainState } from '../../../src/chain/state/index.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { runChainStateConformance } from '../../conformance/chain-state.js';
import { redisUrl } from '../../helpers/redis.js';

if (redisUrl()) {
  runChainStateConformance('RedisChainState', async () => {
    const clock = new ManualClock(1_000_000);
    const backend = new RedisBackend({
      redis: redisUrl()!,
      keyPrefix: `mocra-test-${randomBytes(6).toString('hex')}:`,
    });
    await backend.connect();
    return {
      state: new RedisChainState(backend, { testClock: clock }),
      clock,
      raw: backend,
      cleanup: async () => {
        for await (const key of backend.scan('')) await backend.del(key);
        await backend.close();
      },
    };
  });
}
