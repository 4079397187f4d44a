/**
 * Per-task streams on a Redis Cluster (`createRedisStreamQueues`'s `shardByTask`, the default
 * with a `Cluster` client): three tasks whose hash tags fall one on each master are crawled by two
 * engines. Each task's parser and items streams live on the task's master, beside its state; the
 * commits hand their successors and items off in their own script (no outbox: no RPUSH anywhere)
 * and acknowledge their deliveries there; every master does a share of the work (its own task's
 * stream writes and scripts); `onIdle()` sees the per-task streams; both engines leave every
 * parser stream's group on stop.
 */
import { randomBytes } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ChainKeyBuilder,
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  type ChainEngine,
  type ChainItem,
  type RedisStreamQueues,
} from '../../../src/index.js';
import { ShardedStreamQueue } from '../../../src/chain/sharded-stream-queue.js';
import { keySlot } from '../../../src/store/key-slot.js';
import { InMemoryMetrics } from '../../../src/observe/metrics.js';
import { startTestSite, type TestSite } from '../../../examples/support/test-site.js';
import { shopModule } from '../../conformance/chain-engine.js';
import {
  clusterBinaries,
  describeCluster,
  startRedisCluster,
  type RedisClusterHandle,
} from '../../helpers/redis-cluster.js';

const available = clusterBinaries() !== null;
const GROUP = 'mocra-chain';

let cluster: RedisClusterHandle | null = null;
let client: Cluster | null = null;
let site: TestSite | null = null;
const admins: Redis[] = [];

beforeAll(async () => {
  if (!available) return;
  cluster = await startRedisCluster();
  client = new Cluster(
    cluster.nodes.map((n) => ({ host: n.host, port: n.port })),
    { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 2 } },
  );
  await client.connect();
  for (const n of cluster.nodes) admins.push(cluster.nodeClient(n.port));
  site = await startTestSite({ flakyRatio: 0, slowRatio: 0, serverRatePerSec: 1000 });
}, 45_000);

afterAll(async () => {
  for (const a of admins) a.disconnect();
  await client?.quit().catch(() => client?.disconnect());
  await site?.close();
  await cluster?.stop();
}, 30_000);

/** `cmdstat_<name>` calls of one server's INFO commandstats. */
async function commandCalls(admin: Redis): Promise<Map<string, number>> {
  const info = await admin.info('commandstats');
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

describeCluster('per-task streams on a Redis Cluster', () => {
  it('ShardedStreamQueue: routes by task, finds tasks pushed elsewhere, release, dead letters, take-over, length and shutdown per stream', async () => {
    const prefix = `mocra-test-${randomBytes(6).toString('hex')}:`;
    const keys = new ChainKeyBuilder();
    const metrics = new InMemoryMetrics();
    const make = (consumer: string): RedisStreamQueues =>
      createRedisStreamQueues({
        client: client!,
        keyPrefix: prefix,
        consumer,
        claimIdleMs: 150,
        maxDeliveries: 3,
        blockMs: 50,
        metrics,
      });
    const a = make('a');
    const b = make('b');
    const message = (taskId: string, stepIdx: number): string =>
      JSON.stringify({ v: 1, kind: 'parser_task', body: { taskId, stepIdx } });
    const stepOf = (m: string): number =>
      (JSON.parse(m) as { body: { stepIdx: number } }).body.stepIdx;
    try {
      // a producer that never reads: its pushes go to each task's stream, listed in the index
      for (const [taskId, step] of [
        ['x', 0],
        ['y', 1],
        ['x', 2],
        ['y', 3],
      ] as const)
        await a.parser.push(message(taskId, step));
      await a.parser.push('not json'); // no task: the shared stream
      for (const taskId of ['x', 'y'])
        expect(await client!.xlen(prefix + keys.taskQueue(taskId, 'parser')), taskId).toBe(2);
      expect(await client!.xlen(prefix + keys.queue('parser'))).toBe(1);
      expect(await client!.zscore(prefix + keys.queueTasks(), 'x')).not.toBeNull();
      expect(await a.parser.length!()).toBe(5);
      // `b` never pushed: it finds both tasks through the index (and reads the shared stream)
      const got = [];
      while (got.length < 5) got.push(...(await b.parser.receiveBatch!(5))!);
      const byStep = new Map(
        got.map((d) => [d.message === 'not json' ? -1 : stepOf(d.message), d]),
      );
      expect([...byStep.keys()].sort()).toEqual([-1, 0, 1, 2, 3]);
      await byStep.get(-1)!.deadLetter!('refused by the test');
      await byStep.get(0)!.ack();
      await byStep.get(1)!.release(); // back into task y's stream, its delivery count carried
      await byStep.get(2)!.ack();
      // step 3 is abandoned by `b`: `a` takes it over after claimIdleMs, and gets the released one
      const taken = [(await a.parser.receive())!, (await a.parser.receive())!];
      expect(taken.map((d) => [stepOf(d.message), d.deliveries]).sort()).toEqual([
        [1, 2],
        [3, 2],
      ]);
      for (const d of taken) await d.ack();
      expect(metrics.counter('queue_reclaimed_total', { queue: 'parser' })).toBe(1);
      expect((await a.parser.deadLetters!()).map((d) => [d.reason, d.payload])).toEqual([
        ['refused by the test', 'not json'],
      ]);
      expect(await a.parser.length!()).toBe(0);
    } finally {
      await Promise.all(
        [a, b].flatMap((q) => [q.task.shutdown(), q.parser.shutdown(), q.error.shutdown()]),
      );
    }
    // `a` left every group it read; `b` still has in hand the delivery `a` took over, so it
    // stays in that stream's group, holding nothing — or was removed by `a` as idle
    for (const taskId of ['x', 'y']) {
      const consumers = (await client!.xinfo(
        'CONSUMERS',
        prefix + keys.taskQueue(taskId, 'parser'),
        GROUP,
      )) as unknown[][];
      expect(consumers.map((c) => c[1])).not.toContain('a');
      for (const c of consumers) expect([c[1], c[3]]).toEqual(['b', 0]);
    }
  });

  it('each task’s streams are on its master, commits hand off in-slot (no outbox), every master works', async () => {
    const prefix = `mocra-test-${randomBytes(6).toString('hex')}:`;
    const seeds = cluster!.nodes.map((n) => ({ host: n.host, port: n.port }));
    const keys = new ChainKeyBuilder();
    const ownerOf = (key: string): string => client!.slots[keySlot(key)]![0]!;
    const adminOf = (owner: string): Redis =>
      admins.find((a) => `${a.options.host}:${a.options.port}` === owner)!;
    const taskIds: string[] = [];
    const owners = new Set<string>();
    for (let n = 0; taskIds.length < 3; n++) {
      const owner = ownerOf(prefix + keys.taskRecord(`shard-${n}`));
      if (owners.has(owner)) continue;
      owners.add(owner);
      taskIds.push(`shard-${n}`);
    }
    const items: ChainItem[] = [];
    const problems: string[] = [];
    const workers: {
      engine: ChainEngine;
      store: RedisBackend;
      queues: RedisStreamQueues;
    }[] = [];
    for (const name of ['s1', 's2']) {
      const store = new RedisBackend({ redis: { cluster: seeds }, keyPrefix: prefix });
      const queues = createRedisStreamQueues({
        client: client!,
        keyPrefix: prefix,
        consumer: name,
        blockMs: 100,
      });
      expect(queues.parser).toBeInstanceOf(ShardedStreamQueue);
      const note = (fields: Record<string, unknown>, message: string): void =>
        void problems.push(`${name}: ${message} ${JSON.stringify(fields ?? {})}`);
      const engine = createChainEngine({
        modules: [shopModule(site!)],
        store,
        queues,
        workerId: name,
        logger: { debug: () => {}, info: () => {}, warn: note, error: note },
        concurrency: { parser: 4, download: 8 },
        rateLimit: { global: false, perKey: { rate: 5000, intervalMs: 1000, burst: 500 } },
        onItem: (item) => void items.push(item),
      });
      await store.connect();
      await Promise.all((store.client as Cluster).nodes('master').map((node) => node.ping()));
      workers.push({ engine, store, queues });
    }
    for (const a of admins) await a.config('RESETSTAT');
    for (const w of workers) await w.engine.start();
    for (const [i, taskId] of taskIds.entries())
      await workers[i % 2]!.engine.submit({
        taskId,
        account: 'acme',
        platform: 'web',
        modules: ['shop'],
      });
    const expected = site!.expectedProducts();
    await Promise.all(workers.map((w) => w.engine.onIdle()));
    const stats = workers.map((w) => w.engine.stats());
    const calls = await Promise.all(admins.map(commandCalls));
    for (const w of workers) await w.engine.stop();
    for (const w of workers)
      await Promise.all([
        w.queues.task.shutdown(),
        w.queues.parser.shutdown(),
        w.queues.error.shutdown(),
      ]);
    for (const w of workers) await w.store.close();

    // every product of every task exactly once, each node committed once
    expect(items).toHaveLength(3 * expected.length);
    for (const taskId of taskIds) {
      const ids = items
        .filter((i) => i.taskId === taskId)
        .map((i) => (i.item as { id: string }).id);
      expect(ids.sort(), taskId).toEqual(expected);
    }
    const commits = stats.map((s) => s.commits.COMMIT_OK ?? 0);
    expect(commits.reduce((a, b) => a + b, 0)).toBe(3 * (1 + 12 + expected.length));
    expect(problems).toEqual([]);

    // each task's streams are on its master: every node after the root came through the
    // task's parser stream, every item through its items stream
    for (const taskId of taskIds) {
      const owner = ownerOf(prefix + keys.taskRecord(taskId));
      for (const name of ['parser', 'items'] as const) {
        const key = prefix + keys.taskQueue(taskId, name);
        expect(ownerOf(key), key).toBe(owner);
        const info = (await adminOf(owner).xinfo('STREAM', key)) as unknown[];
        const added = Number(info[info.indexOf('entries-added') + 1]);
        expect(added, key).toBe(name === 'parser' ? 1 + 12 + expected.length : expected.length);
        expect(Number(info[info.indexOf('length') + 1]), key).toBe(0);
        // both engines left the parser stream's group (the item relay's consumers are removed by
        // the reaping of the workers still running, as on the shared items stream)
        if (name === 'parser')
          expect(await adminOf(owner).xinfo('CONSUMERS', key, GROUP), key).toEqual([]);
      }
    }
    // the commits handed off in-slot: nothing went through an outbox (no RPUSH on any master)
    // and every master ran commit scripts that added to its own streams
    for (const [i, c] of calls.entries()) {
      const at = `${admins[i]!.options.host}:${admins[i]!.options.port}`;
      expect(c.get('rpush') ?? 0, at).toBe(0);
      expect(c.get('evalsha') ?? 0, at).toBeGreaterThan(1 + 12 + expected.length);
      expect(c.get('xadd') ?? 0, at).toBeGreaterThanOrEqual(12 + 2 * expected.length);
      expect(c.get('xack') ?? 0, at).toBeGreaterThanOrEqual(1 + 12 + expected.length);
    }
  }, 60_000);
});
