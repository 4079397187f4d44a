/**
 * One worker process of bench/distributed (started by index.ts with `node --import tsx`).
 *
 * Env: REDIS_URL (one server) or CLUSTER_NODES (`host:port,…`, the masters of a cluster),
 * KEY_PREFIX, WORKER_NAME, MODE (`mocra` or `bullmq`), CONCURRENCY, and for bullmq QUEUE_NAME. It needs an IPC channel: it sends `{ type: 'ready' }` once consuming, then
 * `{ type: 'progress', nodes, items }` (mocra: nodes committed and items received; bullmq: jobs
 * completed) at most every 10 ms while work happens, then after `stop` (mocra) `{ type: 'latency',
 * samples }` (ms from each node's commit to each of its items' onItem, in this process) and
 * `{ type: 'stopped' }`. Asked `{ type: 'usage' }`, it answers `{ type: 'usage', cpuUs,
 * counters }`: its own CPU time so far, its context switches (voluntary: it waited for I/O;
 * involuntary: the scheduler took the CPU away) and (mocra) the engine's and its queues' metrics
 * so far — counters by series, and for each timed series (`state_script_duration_ms{script="…"}`)
 * its number of observations.
 * The parent sends `{ type: 'stop' }` to end it; it exits on its own if the parent goes away.
 */
import { Worker as BullWorker } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import {
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  type MetricLabels,
  type Metrics,
} from '../../src/index.js';
import { CommitToItemLatency } from '../lib/harness.js';
import { syntheticDownloader, syntheticModule } from './synthetic.js';
import { connectEveryMaster } from './targets.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const send = (message: Record<string, unknown>): void => {
  if (process.connected) process.send!(message);
};

/** The masters of a cluster, or null on one server. */
const clusterNodes =
  process.env.CLUSTER_NODES?.split(',').map((n) => {
    const [host, port] = n.split(':');
    return { host: host!, port: Number(port) };
  }) ?? null;
const url = clusterNodes ? '' : env('REDIS_URL');
const name = env('WORKER_NAME');
const concurrency = Number(env('CONCURRENCY'));
let nodes = 0;
let items = 0;
/** Commit → onItem of the items this process both committed and handed over. */
const latency = new CommitToItemLatency();
let reported = { nodes: -1, items: -1 };
const report = setInterval(() => {
  if (reported.nodes === nodes && reported.items === items) return;
  reported = { nodes, items };
  send({ type: 'progress', nodes, items });
}, 10);

/** Counts every increment, and the observations of every timed series, by series. */
class CountingMetrics implements Metrics {
  readonly counts = new Map<string, number>();
  increment(name: string, labels?: MetricLabels, by = 1): void {
    const key = series(name, labels);
    this.counts.set(key, (this.counts.get(key) ?? 0) + by);
  }
  observe(name: string, _value: number, labels?: MetricLabels): void {
    this.increment(name, labels);
  }
  gauge(): void {}
}
/**
 * The series of each label object seen, by name: the engine passes one label object per label
 * value (built once), so the bench's own counting stays out of the worker CPU it measures.
 */
const seriesOf = new Map<MetricLabels, Map<string, string>>();
function series(name: string, labels?: MetricLabels): string {
  if (!labels) return name;
  let byName = seriesOf.get(labels);
  if (byName === undefined) {
    // label objects built per call (not the engine's) do not grow it without end
    if (seriesOf.size >= 4096) seriesOf.clear();
    seriesOf.set(labels, (byName = new Map()));
  }
  let key = byName.get(name);
  if (key === undefined) byName.set(name, (key = seriesText(name, labels)));
  return key;
}
function seriesText(name: string, labels: MetricLabels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}
const metrics = new CountingMetrics();

let stop: () => Promise<void>;

if (env('MODE') === 'mocra') {
  const prefix = env('KEY_PREFIX');
  const store = new RedisBackend({
    redis: clusterNodes ? { cluster: clusterNodes } : url,
    keyPrefix: prefix,
  });
  const client = clusterNodes
    ? new Cluster(clusterNodes, { redisOptions: { maxRetriesPerRequest: 2 } })
    : new Redis(url, { maxRetriesPerRequest: 2 });
  const queues = createRedisStreamQueues({
    client,
    keyPrefix: prefix,
    consumer: name,
    blockMs: 100,
    metrics,
  });
  const engine = createChainEngine({
    modules: [syntheticModule()],
    downloader: syntheticDownloader,
    store,
    queues,
    workerId: name,
    concurrency: { parser: concurrency, download: concurrency * 2 },
    rateLimit: { global: false, perKey: { rate: 1_000_000, intervalMs: 1000, burst: 100_000 } },
    retryPollMs: 50,
    stopTimeoutMs: 2_000,
    metrics,
    onItem: (item) => {
      items++;
      latency.item(item);
    },
  });
  engine.on('ModuleStepAdvanced', (e) => {
    nodes++;
    latency.committed(e);
  });
  await store.connect();
  await connectEveryMaster(store);
  await engine.start();
  stop = async () => {
    await engine.stop();
    await Promise.all([queues.task.shutdown(), queues.parser.shutdown(), queues.error.shutdown()]);
    await store.close();
    await client.quit().catch(() => client.disconnect());
  };
} else {
  // on a cluster, KEY_PREFIX carries a hash tag (`{…}`): every key of the queue in one slot
  const connection = clusterNodes
    ? new Cluster(clusterNodes, { redisOptions: { maxRetriesPerRequest: null } })
    : (() => {
        const target = new URL(url);
        return { host: target.hostname, port: Number(target.port), maxRetriesPerRequest: null };
      })();
  const worker = new BullWorker(env('QUEUE_NAME'), async () => undefined, {
    connection,
    prefix: env('KEY_PREFIX'),
    concurrency,
  });
  worker.on('completed', () => void nodes++);
  worker.on('failed', (_job, error) => send({ type: 'failed', error: String(error) }));
  await worker.waitUntilReady();
  stop = async () => {
    await worker.close();
    if (connection instanceof Cluster) await connection.quit().catch(() => connection.disconnect());
  };
}

send({ type: 'ready' });

let stopping: Promise<void> | undefined;
const shutdown = (): Promise<void> =>
  (stopping ??= (async () => {
    try {
      await stop();
    } finally {
      clearInterval(report);
      send({ type: 'progress', nodes, items });
      if (latency.samples.length > 0) send({ type: 'latency', samples: latency.samples });
      // the last message written out before exiting: a large one (thousands of latency samples)
      // would otherwise be cut off by process.exit
      await new Promise<void>((resolve) => {
        if (!process.connected) resolve();
        else process.send!({ type: 'stopped' }, undefined, undefined, () => resolve());
      });
      process.disconnect?.();
      process.exit(0);
    }
  })());
process.on('message', (m: { type?: string }) => {
  if (m?.type === 'stop') void shutdown();
  else if (m?.type === 'usage') {
    // this process's CPU so far (user + system, µs), for the per-node cost
    const cpu = process.cpuUsage();
    const ru = process.resourceUsage();
    send({
      type: 'usage',
      cpuUs: cpu.user + cpu.system,
      counters: {
        ...Object.fromEntries(metrics.counts),
        'context switches{kind="voluntary"}': ru.voluntaryContextSwitches,
        'context switches{kind="involuntary"}': ru.involuntaryContextSwitches,
      },
    });
  }
});
process.once('disconnect', () => void shutdown()); // the parent died: do not linger
process.once('SIGTERM', () => void shutdown());
