/**
 * The lease heartbeat: a node slower than its lease runs once and commits once while its
 * process lives, though another worker reads the same queue (and would take an expired lease
 * over) and sweeps.
 */
import { expect, it } from 'vitest';
import {
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  defineModule,
  type ChainEngine,
  type ChainItem,
  type RedisStreamQueues,
} from '../../../src/index.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeRedis('lease heartbeat', () => {
  const redis = useRedis();

  it('a 3 s download under a 1 s lease, two workers: one download, one commit, one item', async () => {
    let downloads = 0;
    const items: ChainItem[] = [];
    const slow = defineModule({
      id: 'slow',
      steps: [
        {
          name: 'only',
          generate: () => [{ url: 'slow://page' }],
          parse: () => ({ items: [{ ok: true }] }),
        },
      ],
    });
    const make = (consumer: string): { engine: ChainEngine; queues: RedisStreamQueues } => {
      const queues = createRedisStreamQueues({
        client: redis.client(),
        keyPrefix: redis.prefix,
        consumer,
        blockMs: 50,
        claimIdleMs: 1_500, // above the lease, as required: without renewals both run out
      });
      const store = new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix });
      const engine = createChainEngine({
        modules: [slow],
        store,
        queues,
        workerId: consumer,
        leaseMs: 1_000,
        sweepIntervalMs: 100, // sweeps often
        downloader: (_request, { signal }) => {
          downloads++;
          return new Promise((resolve, reject) => {
            const timer = setTimeout(() => resolve({ status: 200, headers: {}, body: '' }), 3_000);
            signal.addEventListener('abort', () => {
              clearTimeout(timer);
              reject(new Error('aborted'));
            });
          });
        },
        onItem: (item) => void items.push(item),
        stopTimeoutMs: 200,
      });
      return { engine, queues };
    };
    const workers = [make('a'), make('b')];
    try {
      for (const w of workers) await w.engine.start();
      await workers[0]!.engine.submit({
        taskId: 't',
        account: 'x',
        platform: 'y',
        modules: ['slow'],
      });
      const commits = (): number =>
        workers.reduce((n, w) => n + (w.engine.stats().commits.COMMIT_OK ?? 0), 0);
      await until(() => commits() >= 1 && items.length >= 1, 15_000);
      // give a second run, were there one, the time to show: past another lease and claim time
      await new Promise((r) => setTimeout(r, 2_000));
      expect(downloads).toBe(1);
      expect(commits()).toBe(1);
      expect(items).toHaveLength(1);
      const rejected = workers.reduce(
        (n, w) =>
          n +
          (w.engine.stats().commits.FENCING_REJECT ?? 0) +
          (w.engine.stats().commits.CAS_CONFLICT ?? 0),
        0,
      );
      expect(rejected).toBe(0);
    } finally {
      for (const w of workers) {
        await w.engine.stop();
        await Promise.all(Object.values(w.queues).map((q) => q.shutdown()));
      }
    }
  });
});
