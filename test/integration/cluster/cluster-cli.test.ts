/**
 * The `mocra` command against a Redis Cluster: `--redis` names any one node (as an operator
 * would); the command finds that it is a cluster and reads the runs, leases and dead letters of
 * a deployment whose tasks spread over the masters, and replays a dead letter to its queue.
 */
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  defineModule,
  type ChainEngine,
  type RedisStreamQueues,
  type RunStatus,
} from '../../../src/index.js';
import { keySlot } from '../../../src/store/key-slot.js';
import {
  clusterBinaries,
  describeCluster,
  startRedisCluster,
  type RedisClusterHandle,
} from '../../helpers/redis-cluster.js';
import { mocra as run } from '../cli/run-cli.js';

const mocra = (...args: string[]) => run(args);
const available = clusterBinaries() !== null;
const prefix = `mocra-cli-${randomBytes(4).toString('hex')}:`;

let cluster: RedisClusterHandle | null = null;
let client: Cluster | null = null;
let store: RedisBackend | null = null;
let queues: RedisStreamQueues | null = null;
let engine: ChainEngine | null = null;
const runIds: string[] = [];

/** Task ids whose hash tags fall on different masters (one per master). */
function tasksOnEveryMaster(router: Cluster, masters: number): string[] {
  const out: string[] = [];
  const used = new Set<string>();
  for (let i = 0; out.length < masters && i < 10_000; i++) {
    const taskId = `cli-${i}`;
    const owner = router.slots[keySlot(`{t:${taskId}}`)]?.[0];
    if (owner !== undefined && !used.has(owner)) {
      used.add(owner);
      out.push(taskId);
    }
  }
  return out;
}

beforeAll(async () => {
  if (!available) return;
  cluster = await startRedisCluster();
  const seeds = cluster.nodes.map((n) => ({ host: n.host, port: n.port }));
  client = new Cluster(seeds, { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 2 } });
  await client.connect();
  store = new RedisBackend({ redis: { cluster: seeds }, keyPrefix: prefix });
  await store.connect();
  queues = createRedisStreamQueues({ client, keyPrefix: prefix, consumer: 'w1', blockMs: 50 });
  const crawl = defineModule({
    id: 'm',
    steps: [
      { name: 'list', generate: () => [{ url: 'x://list' }], parse: () => ({ next: [1, 2] }) },
      {
        name: 'page',
        generate: ({ input }) => [{ url: `x://page/${String(input)}` }],
        parse: (_r, { input }) => ({ items: [{ page: input }] }),
      },
    ],
  });
  engine = createChainEngine({
    modules: [crawl],
    store,
    queues,
    workerId: 'w1',
    downloader: () => Promise.resolve({ status: 200, headers: {}, body: '' }),
  });
  await engine.start();
  for (const taskId of tasksOnEveryMaster(client, cluster.nodes.length)) {
    const { runId } = await engine.submit({ taskId, account: 'a', platform: 'p', modules: ['m'] });
    runIds.push(runId);
  }
  for (const runId of runIds)
    expect((await engine.waitForRun(runId, { timeoutMs: 20_000 })).state).toBe('done');
  // a message of an unregistered module: dead-lettered by the ingress
  await queues.parser.push(
    JSON.stringify({
      kind: 'parser_task',
      body: {
        taskId: 'cli-ghost',
        runId: runIds[0],
        account: 'a',
        platform: 'p',
        moduleId: 'ghost',
        stepIdx: 0,
        prefixRequest: '',
      },
    }),
  );
  const until = Date.now() + 10_000;
  while ((await queues.parser.deadLetters?.(10))?.length !== 1 && Date.now() < until)
    await new Promise((r) => setTimeout(r, 50));
  await engine.stop();
}, 60_000);

afterAll(async () => {
  await engine?.stop().catch(() => {});
  if (queues) await Promise.all(Object.values(queues).map((q) => q.shutdown()));
  await store?.close();
  await client?.quit().catch(() => client?.disconnect());
  await cluster?.stop();
}, 30_000);

describeCluster('mocra command line on a Redis Cluster', () => {
  const base = () => [
    '--redis',
    `redis://127.0.0.1:${cluster!.nodes[0]!.port}`,
    '--prefix',
    prefix,
  ];

  it('inspect --json, given one node, lists the runs of tasks on every master', async () => {
    expect(runIds).toHaveLength(3);
    const r = await mocra('inspect', ...base(), '--json');
    expect(r.code, r.stderr).toBe(0);
    const { runs } = JSON.parse(r.stdout) as { runs: RunStatus[] };
    for (const runId of runIds) {
      expect(runs.find((x) => x.runId === runId)).toMatchObject({
        state: 'done',
        nodes: { queued: 0, running: 0, done: 3, failed: 0 },
      });
    }
  });

  it('inspect run --json reads a run whose task is on another master', async () => {
    for (const runId of runIds) {
      const r = await mocra('inspect', 'run', runId, ...base(), '--json');
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { run: RunStatus; leases: unknown[] };
      expect(out.run).toMatchObject({ runId, state: 'done' });
      expect(out.leases).toEqual([]);
    }
  });

  it('dead-letters list and replay work on the cluster', async () => {
    const list = await mocra('dead-letters', 'list', ...base(), '--json');
    expect(list.code, list.stderr).toBe(0);
    const { deadLetters } = JSON.parse(list.stdout) as {
      deadLetters: { id: string; queue: string; moduleId: string; reason: string }[];
    };
    expect(deadLetters).toEqual([expect.objectContaining({ queue: 'parser', moduleId: 'ghost' })]);
    const replay = await mocra('dead-letters', 'replay', ...base(), '--json');
    expect(replay.code, replay.stderr).toBe(0);
    expect((await mocra('dead-letters', 'list', ...base(), '--json')).stdout).toContain(
      '"deadLetters": []',
    );
    // back in the parser queue of its task (the per-task stream, on the task's master)
    expect(await queues!.parser.length()).toBe(1);
  });
});
