/**
 * Stalled work recovers: a worker killed with SIGKILL while it runs a node leaves its delivery
 * pending; another worker takes it over once it has been idle for `claimIdleMs` (its lease, kept
 * shorter, has run out by then), runs the node and commits it, and the dead consumer is removed
 * from the group.
 */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import {
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  type ChainItem,
} from '../../../src/index.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';
import { startWorkerProcess } from '../../helpers/worker-process.js';
import { stallModule } from './fixtures/stall-module.js';

const CLAIM_IDLE_MS = 1_500;
const LEASE_MS = 1_000;

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describeRedis('stalled work', () => {
  const redis = useRedis();

  it("a SIGKILLed worker's node runs again on another worker after claimIdleMs, and the dead consumer leaves the group", async () => {
    const victim = startWorkerProcess(
      join(import.meta.dirname, 'fixtures/stall-worker.ts'),
      'victim',
      {
        REDIS_URL: redis.url,
        KEY_PREFIX: redis.prefix,
        CLAIM_IDLE_MS: String(CLAIM_IDLE_MS),
        LEASE_MS: String(LEASE_MS),
      },
    );
    const items: ChainItem[] = [];
    const queues = createRedisStreamQueues({
      client: redis.client(),
      keyPrefix: redis.prefix,
      consumer: 'survivor',
      blockMs: 50,
      claimIdleMs: CLAIM_IDLE_MS,
    });
    const survivor = createChainEngine({
      modules: [stallModule],
      store: new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix }),
      queues,
      workerId: 'survivor',
      leaseMs: LEASE_MS,
      downloader: () => Promise.resolve({ status: 200, headers: {}, body: '' }),
      onItem: (item) => void items.push(item),
    });
    try {
      await until('the victim is ready', () => victim.stdout.includes('ready'), 30_000);
      // the victim alone reads the queues: it takes the node, then dies holding it
      await survivor.submit({ taskId: 't', account: 'a', platform: 'p', modules: ['stall'] });
      await until('the victim holds the node', () => victim.stdout.includes('downloading'), 30_000);
      victim.child.kill('SIGKILL');
      expect((await victim.exited).signal).toBe('SIGKILL');
      await survivor.start();
      // bounded by the window (claim time) plus a margin for a loaded machine
      await until('the survivor commits the node', () => items.length === 1, CLAIM_IDLE_MS * 10);
      expect(survivor.stats().commits.COMMIT_OK).toBe(1);
      expect(survivor.stats().zombiesRecovered).toBe(1); // its claim took the dead lease over
      expect(items[0]!.item).toEqual({ done: true });
      const consumers = async (): Promise<string[]> =>
        (
          (await redis
            .client()
            .xinfo('CONSUMERS', `${redis.prefix}chain:queue:parser`, 'mocra-chain')) as unknown[][]
        ).map((row) => String(row[1]));
      await until(
        'the dead consumer is removed',
        async () => !(await consumers()).includes('victim'),
        CLAIM_IDLE_MS * 10,
      );
      expect(await consumers()).toContain('survivor');
    } finally {
      if (victim.child.exitCode === null && victim.child.signalCode === null)
        victim.child.kill('SIGKILL');
      await survivor.stop();
      await Promise.all(Object.values(queues).map((q) => q.shutdown()));
    }
  });
});
