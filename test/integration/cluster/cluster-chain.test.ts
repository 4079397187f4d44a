/**
 * The chain engine end to end on a real Redis Cluster (3 masters on loopback): its state on a
 * `RedisBackend` over the cluster and its queues as Redis Streams on the same cluster
 * (`createRedisStreamQueues` with an ioredis `Cluster`). Two engines in this process share the
 * cluster, as two worker processes would, and crawl the local test site with its faults on
 * (flaky 503s, slow pages): every expected product comes out exactly once, each node commits
 * once, both engines do work, no command is refused as CROSSSLOT, nothing is dead-lettered, the
 * state keys are spread over every master, and both engines stop cleanly and leave the group.
 * Before it, one `RedisStreamQueue` case on the cluster client goes through release (a MULTI on
 * the stream key), dead letters (another key), reclaim (XAUTOCLAIM) and shutdown (XGROUP).
 */
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  type ChainEngine,
  type ChainItem,
  type Logger,
  type RedisStreamQueues,
} from '../../../src/index.js';
import { RedisStreamQueue } from '../../../src/chain/redis-stream-queue.js';
import { InMemoryMetrics } from '../../../src/observe/metrics.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { keySlot } from '../../../src/store/key-slot.js';
import { startTestSite, type TestSite } from '../../../examples/support/test-site.js';
import { shopModule } from '../../conformance/chain-engine.js';
import {
  clusterBinaries,
  describeCluster,
  startRedisCluster,
  type RedisClusterHandle,
} from '../../helpers/redis-cluster.js';

const available = clusterBinaries() !== null;
const TASKS = 3;
const GROUP = 'mocra-chain';
/** Client settings of the test's own `Cluster`: nothing resent, nothing queued offline. */
const CLUSTER_OPTIONS = {
  lazyConnect: true,
  enableOfflineQueue: false,
  retryDelayOnFailover: 0,
  redisOptions: { autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 0 },
};

let cluster: RedisClusterHandle | null = null;
let client: Cluster | null = null;
let site: TestSite | null = null;

interface Worker {
  name: string;
  engine: ChainEngine;
  store: RedisBackend;
  queues: RedisStreamQueues;
  stopped: boolean;
}
const workers: Worker[] = [];

async function stopWorker(w: Worker): Promise<void> {
  if (w.stopped) return;
  w.stopped = true;
  await w.engine.stop();
  await Promise.all([
    w.queues.task.shutdown(),
    w.queues.parser.shutdown(),
    w.queues.error.shutdown(),
  ]);
  await w.store.close();
}

async function until(what: string, condition: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  if (!available) return;
  cluster = await startRedisCluster();
  client = new Cluster(
    cluster.nodes.map((n) => ({ host: n.host, port: n.port })),
    CLUSTER_OPTIONS,
  );
  await client.connect();
  site = await startTestSite({
    flakyRatio: 0.25,
    flakyHits: 1,
    slowRatio: 0.1,
    slowMs: 20,
    serverRatePerSec: 400,
  });
}, 45_000);

afterAll(async () => {
  for (const w of workers) await stopWorker(w).catch(() => undefined);
  await client?.quit().catch(() => client?.disconnect());
  await site?.close();
  await cluster?.stop();
}, 30_000);

describeCluster('chain engine on a Redis Cluster', () => {
  it('RedisStreamQueue on a Cluster client: delivery, release, dead letters, reclaim and shutdown, all on the stream key', async () => {
    const prefix = `mocra-test-${randomBytes(6).toString('hex')}:`;
    const metrics = new InMemoryMetrics();
    const make = (consumer: string, claimIdleMs = 60_000): RedisStreamQueue<number> =>
      new RedisStreamQueue<number>({
        client: client!,
        name: 'parser',
        key: `${prefix}chain:queue:parser`,
        deadLetterKey: `${prefix}chain:queue:parser:dead`,
        group: GROUP,
        consumer,
        encode: String,
        decode: (p) => {
          const n = Number(p);
          if (!Number.isInteger(n)) throw new Error(`not an integer: ${p}`);
          return n;
        },
        claimIdleMs,
        maxDeliveries: 3,
        blockMs: 50,
        metrics,
      });
    const a = make('a', 150);
    const b = make('b', 150);
    try {
      for (let n = 0; n < 4; n++) await a.push(n);
      const first = (await a.receive())!;
      expect([first.message, first.deliveries]).toEqual([0, 1]);
      await first.release(); // XADD + XACK + XDEL in one MULTI on the stream key
      const others = [(await a.receive())!, (await a.receive())!, (await a.receive())!];
      expect(others.map((d) => d.message)).toEqual([1, 2, 3]);
      await others[0]!.ack();
      await others[1]!.deadLetter!('refused by the test');
      // others[2] is abandoned by `a`: `b` takes it over after claimIdleMs (counted); `b` also
      // gets the released one, with its delivery count carried along
      const taken = [(await b.receive())!, (await b.receive())!];
      expect(taken.map((d) => [d.message, d.deliveries]).sort()).toEqual([
        [0, 2],
        [3, 2],
      ]);
      for (const d of taken) await d.ack();
      expect(metrics.counter('queue_reclaimed_total', { queue: 'parser' })).toBe(1);
      const dead = await a.deadLetters();
      expect(dead.map((d) => [d.reason, d.payload])).toEqual([['refused by the test', '2']]);
      expect(await a.length()).toBe(0);
    } finally {
      await Promise.all([a.shutdown(), b.shutdown()]);
    }
    // `b` left the group; `a` holds no pending entry (it still has in hand the delivery `b` took
    // over, so it did not leave) — or is gone: idle past claimIdleMs with nothing pending, `b`
    // may have removed it
    const consumers = (await client!.xinfo(
      'CONSUMERS',
      `${prefix}chain:queue:parser`,
      GROUP,
    )) as unknown[][];
    expect(consumers.map((c) => c[1])).not.toContain('b');
    for (const c of consumers) expect([c[1], c[3]]).toEqual(['a', 0]);
  });

  it('crawls the test site with state and Stream queues on the cluster: every product exactly once, no CROSSSLOT, no dead letter', async () => {
    const started = Date.now();
    const prefix = `mocra-test-${randomBytes(6).toString('hex')}:`;
    const seeds = cluster!.nodes.map((n) => ({ host: n.host, port: n.port }));
    const items: ChainItem[] = [];
    const problems: string[] = [];
    const logger = (name: string): Logger => {
      const note = (level: string) => (fields: Record<string, unknown>, message: string) => {
        const line = `${name} ${level}: ${message} ${JSON.stringify(fields ?? {})}`;
        if (/CROSSSLOT|MOVED|ASK|CLUSTERDOWN|TRYAGAIN/.test(line)) problems.push(line);
        if (level === 'error') problems.push(line);
      };
      return { debug: () => {}, info: () => {}, warn: note('warn'), error: note('error') };
    };

    for (const name of ['w1', 'w2']) {
      // the state: a backend that creates and owns its own Cluster client from seed nodes
      const store = new RedisBackend({ redis: { cluster: seeds }, keyPrefix: prefix });
      // the queues: on the test's Cluster client, shared by both engines like a process's client
      const queues = createRedisStreamQueues({
        client: client!,
        keyPrefix: prefix,
        consumer: name,
        blockMs: 100,
      });
      const engine = createChainEngine({
        modules: [shopModule(site!)],
        store,
        queues,
        workerId: name,
        logger: logger(name),
        concurrency: { parser: 4, download: 8 },
        rateLimit: { global: false, perKey: { rate: 2000, intervalMs: 1000, burst: 200 } },
        downloadRetry: { maxRetries: 4, initialDelayMs: 5, maxDelayMs: 50, maxRetryAfterMs: 200 },
        nodeRetry: { maxRetries: 8, initialDelayMs: 20, maxDelayMs: 400, jitter: 0.2 },
        retryPollMs: 10,
        stopTimeoutMs: 5_000,
        onItem: (item) => void items.push(item),
      });
      workers.push({ name, engine, store, queues, stopped: false });
      await store.connect();
      await engine.start();
    }
    expect(workers.every((w) => w.engine.runtimeMode === 'distributed')).toBe(true);

    // one task per master: a task's state keys share its hash tag, so they live on one master
    const ownerOf = (key: string): string => client!.slots[keySlot(key)]![0]!;
    const keys = new ChainKeyBuilder();
    const taskIds: string[] = [];
    const taskOwners = new Set<string>();
    for (let n = 0; taskIds.length < TASKS; n++) {
      const owner = ownerOf(prefix + keys.taskRecord(`crawl-${n}`));
      if (taskOwners.has(owner)) continue;
      taskOwners.add(owner);
      taskIds.push(`crawl-${n}`);
    }
    for (const [i, taskId] of taskIds.entries()) {
      await workers[i % workers.length]!.engine.submit({
        taskId,
        account: 'acme',
        platform: 'web',
        modules: ['shop'],
      });
    }

    const expected = site!.expectedProducts();
    const streams = (['task', 'parser', 'error'] as const).map((q) => `${prefix}chain:queue:${q}`);
    // done: every expected item is in and no message is left in any stream
    await until(
      'every product and empty streams',
      async () => {
        if (items.length < TASKS * expected.length) return false;
        const lengths = await Promise.all(streams.map((s) => client!.xlen(s)));
        return lengths.every((n) => n === 0);
      },
      40_000,
    );
    const crawledMs = Date.now() - started;

    // the state really is spread over the cluster's masters
    const stateOwners = new Set<string>();
    for (const node of client!.nodes('master')) {
      let cursor = '0';
      let found = 0;
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        found += keys.filter((k) => k.includes('{t:')).length;
      } while (cursor !== '0');
      if (found > 0) stateOwners.add(`${node.options.host}:${node.options.port}`);
    }

    const stopping = Date.now();
    for (const w of workers) await stopWorker(w);
    const stopMs = Date.now() - stopping;

    // every product of every task exactly once
    expect(items).toHaveLength(TASKS * expected.length);
    for (const taskId of taskIds) {
      const ids = items
        .filter((i) => i.taskId === taskId)
        .map((i) => (i.item as { id: string }).id);
      expect(ids.sort(), taskId).toEqual(expected);
    }
    // each node committed once, by one of the two engines, and both engines worked
    const stats = workers.map((w) => w.engine.stats());
    const commits = stats.map((s) => s.commits.COMMIT_OK ?? 0);
    expect(commits.reduce((a, b) => a + b, 0)).toBe(TASKS * (1 + 12 + expected.length));
    for (const [i, n] of commits.entries()) expect(n, workers[i]!.name).toBeGreaterThan(0);
    for (const s of stats) {
      expect(s.deadLettered).toBe(0);
      expect(s.nodesGivenUp).toBe(0);
    }
    // nothing dead-lettered, by the engine or by the queues
    for (const q of ['task', 'parser', 'error']) {
      expect(await client!.xlen(`${prefix}chain:queue:${q}:dead`), q).toBe(0);
    }
    expect(problems).toEqual([]);
    // the site's faults did happen (so retries went through the cluster too)
    expect(site!.statuses.get(503) ?? 0).toBeGreaterThan(0);
    // each master holds the state of one task; the streams live where their slot says
    expect(stateOwners.size).toBe(3);
    const streamOwners = streams.map(ownerOf);
    for (const [i, s] of streams.entries()) {
      const [host, port] = streamOwners[i]!.split(':');
      const owner = client!
        .nodes('master')
        .find((n) => n.options.host === host && String(n.options.port) === port)!;
      expect(await owner.exists(s), s).toBe(1);
    }
    // both engines left the consumer group of every stream
    for (const s of streams) {
      expect(await client!.xinfo('CONSUMERS', s, GROUP), s).toEqual([]);
    }
    console.log(
      `cluster chain: ${TASKS} tasks, ${items.length} products in ${crawledMs} ms, nodes committed per engine ` +
        `${commits.join('/')}, stop in ${stopMs} ms, 503s ${site!.statuses.get(503) ?? 0}, ` +
        `streams on ${streamOwners.join(', ')}`,
    );
    expect(Date.now() - started).toBeLessThan(55_000);
  }, 60_000);
});
