/**
 * One script per node: with its queues on Redis Streams beside its state, the engine's commit
 * also claims the next node waiting for a run slot (see src/chain/engine/claim-slots.ts), so
 * most nodes are claimed without a `ptm_claim` call of their own — and every node still runs
 * and commits once, and the stage's concurrency holds.
 */
import { expect, it } from 'vitest';
import {
  InMemoryMetrics,
  RedisBackend,
  createChainEngine,
  defineModule,
  type ChainItem,
} from '../../../src/index.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

const LEAVES = 120;

describeRedis('a commit claims the next node', () => {
  const redis = useRedis();

  it('most nodes are claimed by the commit before them; each runs and commits once; at most `concurrency` run at once', async () => {
    let running = 0;
    let most = 0;
    const runs = new Map<string, number>();
    const crawl = defineModule({
      id: 'm',
      steps: [
        {
          name: 'list',
          generate: () => [{ url: 'x://list' }],
          parse: () => ({ next: Array.from({ length: LEAVES }, (_, i) => i) }),
        },
        {
          name: 'leaf',
          generate: ({ input }) => [{ url: `x://leaf/${String(input)}` }],
          parse: (_r, { input }) => ({ items: [{ leaf: input }] }),
        },
      ],
    });
    const downloader = async (request: { url: string }) => {
      runs.set(request.url, (runs.get(request.url) ?? 0) + 1);
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 1));
      running--;
      return { status: 200, headers: {}, body: '' };
    };
    const store = new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix.slice(0, -1) });
    const metrics = new InMemoryMetrics();
    const items: ChainItem[] = [];
    let committed = 0;
    const engine = createChainEngine({
      modules: [crawl],
      store,
      downloader,
      metrics,
      concurrency: { parser: 3, download: 16 },
      onItem: (item) => void items.push(item),
    });
    engine.on('ModuleStepAdvanced', () => void committed++);
    await engine.start();
    const { runId } = await engine.submit({
      taskId: 't',
      account: 'a',
      platform: 'p',
      modules: ['m'],
    });
    expect((await engine.waitForRun(runId, { timeoutMs: 20_000 })).state).toBe('done');
    await engine.stop();
    await store.close();

    const nodes = 1 + LEAVES;
    expect(committed).toBe(nodes);
    expect(items.length).toBe(LEAVES);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(runs.size).toBe(nodes);
    expect(most).toBeLessThanOrEqual(3);
    // every node was claimed (EXECUTE counted once per node) ...
    expect(metrics.counter('ptm_claim_total', { result: 'EXECUTE' })).toBe(nodes);
    // ... but most of them by the commit before them: few claim scripts of their own
    const claimScripts =
      metrics.histogram('state_script_duration_ms', { script: 'claim' })?.count ?? 0;
    const commitScripts =
      metrics.histogram('state_script_duration_ms', { script: 'commitSuccess' })?.count ?? 0;
    expect(commitScripts).toBe(nodes);
    expect(claimScripts).toBeLessThan(nodes / 2);
  });
});

describeRedis('nodes waiting for a run slot on stop()', () => {
  const redis = useRedis();

  it('a node still waiting for a slot when stop() gives up is left unacknowledged and unclaimed, for another worker', async () => {
    const started: string[] = [];
    const crawl = defineModule({
      id: 'm',
      steps: [
        {
          name: 'list',
          generate: () => [{ url: 'x://list' }],
          parse: () => ({ next: [1, 2, 3] }),
        },
        {
          name: 'leaf',
          generate: ({ input }) => [{ url: `x://leaf/${String(input)}` }],
          parse: () => ({ items: [] }),
        },
      ],
    });
    // a leaf's download never ends on its own: only the engine's abort ends it
    const downloader = (request: { url: string }, { signal }: { signal: AbortSignal }) => {
      started.push(request.url);
      if (request.url === 'x://list')
        return Promise.resolve({ status: 200, headers: {}, body: '' });
      return new Promise<never>((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
      );
    };
    const client = redis.client();
    const store = new RedisBackend({ redis: client, keyPrefix: redis.prefix.slice(0, -1) });
    const engine = createChainEngine({
      modules: [crawl],
      store,
      downloader,
      concurrency: { parser: 1, download: 4 },
      stopTimeoutMs: 300,
    });
    await engine.start();
    const { runId } = await engine.submit({
      taskId: 't',
      account: 'a',
      platform: 'p',
      modules: ['m'],
    });
    const until = Date.now() + 10_000;
    // one leaf runs (its slot the only one); the others are in hand or in the stream
    while (!started.some((u) => u.startsWith('x://leaf/')) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    await engine.stop();
    // one leaf claimed (its lease left to expire), the other two never claimed
    const status = await engine.runStatus(runId);
    const leaves = started.filter((u) => u.startsWith('x://leaf/'));
    expect(leaves).toHaveLength(1);
    expect(status.nodes).toMatchObject({ running: 1, queued: 2, done: 1 });
    // every unfinished leaf's message is still in the parser stream, pending or new: none lost
    const stream = `${store.keyPrefix}chain:queue:parser`;
    const pending = (await client.xpending(stream, 'mocra-chain')) as [number, ...unknown[]];
    const length = await client.xlen(stream);
    expect(length).toBe(3);
    expect(pending[0]).toBeGreaterThanOrEqual(1);
    await store.close();
  });
});
