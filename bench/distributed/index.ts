/**
 * bench/distributed: the chain engine spread over 1, 2 and 4 worker processes sharing one
 * private redis-server (state in a RedisBackend, queues as Redis Streams), beside BullMQ
 * processing the same number of no-op jobs with the same number of worker processes, in the
 * same run.
 *
 *   node --expose-gc --import tsx bench/distributed/index.ts
 *
 * Workload (bench/distributed/synthetic.ts): one task per round of a 3-step module, root → 30
 * lists → 100 leaves each (3,031 nodes, 3,000 items), whose downloader answers in process at
 * once (no HTTP): what is measured is the engine and Redis. Throughput is committed nodes per
 * second, from `submit()` to the last node committed and the last item received, summed over
 * the workers (each reports its counts to this process over IPC every 10 ms). Each worker also
 * measures, for the items it hands over, the time from its node's commit to `onItem` (p50/p95
 * per worker count; target p95 ≤ 250 ms).
 *
 * BullMQ: the same number of jobs (3,031) per round, added by this process with `addBulk` in
 * chunks of 1,000 inside the timed region (the workers start on the first chunk, as the engine
 * starts on the root before the leaves exist), timed to the last `completed` event. Each BullMQ
 * worker process runs one `Worker` with the same concurrency as each engine's parser stage
 * (BENCH_DIST_CONCURRENCY, default 16 per process), so both sides have the same number of
 * processes and the same total concurrency.
 *
 * Cost per node (mocra) or per job (BullMQ), over the measured rounds: Redis CPU (INFO cpu),
 * Redis commands (INFO commandstats: the commands scripts run are counted too), Redis read
 * events (INFO stats `total_reads_processed`, about one per client round trip), the CPU of the
 * contender's worker processes (each answers a `usage` request with `process.cpuUsage()`), and
 * the Redis-bound ceiling, 1 s ÷ Redis CPU per node.
 *
 * For each worker count both sets of processes are started (untimed), their rounds
 * interleaved, then both are stopped. BENCH_ROUNDS (default 5), BENCH_DIST_WORKERS (default
 * "1,2,4"), BENCH_DIST_LISTS and BENCH_DIST_PER_LIST size it; BENCH_VERBOSE=1 prints each round.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import {
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  type RedisStreamQueues,
} from '../../src/index.js';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import {
  latencySummary,
  printCase,
  summarize,
  writeResults,
  type CaseResult,
} from '../lib/harness.js';
import {
  ITEMS_PER_TASK,
  LISTS,
  MODULE_ID,
  NODES_PER_TASK,
  PER_LIST,
  syntheticModule,
} from './synthetic.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const warmup = 1;
const WORKER_COUNTS = (process.env.BENCH_DIST_WORKERS ?? '1,2,4').split(',').map(Number);
const CONCURRENCY = Number(process.env.BENCH_DIST_CONCURRENCY ?? 16);
const JOBS = NODES_PER_TASK;
const ROUND_TIMEOUT_MS = 60_000;
const WORKER_SCRIPT = join(import.meta.dirname, 'worker.ts');
const bullmqVersion = (createRequire(import.meta.url)('bullmq/package.json') as { version: string })
  .version;
const verbose = Boolean(process.env.BENCH_VERBOSE);

interface Progress {
  nodes: number;
  items: number;
}

/** What a worker sends over IPC. */
interface WorkerMessage {
  type: string;
  nodes?: number;
  items?: number;
  samples?: number[];
  error?: string;
  cpuUs?: number;
}

/** Commit → onItem latency samples (ms) of the engine workers, by worker count. */
const itemLatency = new Map<number, number[]>();

/** A worker child process and its latest reported counts. */
interface Child {
  name: string;
  proc: ChildProcess;
  stopping: boolean;
  progress: Progress;
  /** Commit → onItem samples (ms) the worker sent when it stopped. */
  latency: number[];
  stderr: string;
  ready: Promise<void>;
  exited: Promise<void>;
  /** Answers of `usage` requests, in order. */
  usageWaiters: ((cpuUs: number) => void)[];
}

/** Children of every kind alive right now (stopped in `finally` whatever happens). */
const alive = new Set<Child>();
/** Called on every progress message: lets a round wake up as soon as its condition holds. */
let onProgress: (() => void) | null = null;
let failure: string | null = null;

function startChild(name: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', WORKER_SCRIPT], {
    env: { ...process.env, ...env, WORKER_NAME: name, CONCURRENCY: String(CONCURRENCY) },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let ready!: () => void;
  let notReady!: (e: Error) => void;
  const child: Child = {
    name,
    proc,
    stopping: false,
    progress: { nodes: 0, items: 0 },
    latency: [],
    stderr: '',
    ready: new Promise<void>((resolve, reject) => {
      ready = resolve;
      notReady = reject;
    }),
    exited: new Promise<void>((resolve) => proc.once('exit', () => resolve())),
    usageWaiters: [],
  };
  proc.stderr!.on('data', (c: Buffer) => (child.stderr += c.toString()));
  proc.on('message', (m: WorkerMessage) => {
    if (m.type === 'ready') ready();
    else if (m.type === 'usage') child.usageWaiters.shift()?.(m.cpuUs!);
    else if (m.type === 'latency') child.latency.push(...m.samples!);
    else if (m.type === 'progress') {
      child.progress = { nodes: m.nodes!, items: m.items! };
      onProgress?.();
    } else if (m.type === 'failed') {
      failure = `${name}: ${m.error}`;
      onProgress?.();
    }
  });
  proc.once('exit', (code, signal) => {
    alive.delete(child);
    if (!child.stopping) {
      failure = `${name} exited (${code ?? signal}):\n${child.stderr}`;
      onProgress?.();
    }
    notReady(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${child.stderr}`));
  });
  alive.add(child);
  return child;
}

async function stopChild(child: Child): Promise<void> {
  child.stopping = true;
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const force = setTimeout(() => child.proc.kill('SIGKILL'), 10_000);
  if (child.proc.connected) child.proc.send({ type: 'stop' });
  else child.proc.kill('SIGTERM');
  await child.exited;
  clearTimeout(force);
}

/** The CPU time (µs) the children have used so far, asked of each over IPC. */
async function childrenCpuUs(children: Child[]): Promise<number> {
  const each = await Promise.all(
    children.map(
      (c) =>
        new Promise<number>((resolve) => {
          c.usageWaiters.push(resolve);
          c.proc.send({ type: 'usage' });
        }),
    ),
  );
  return each.reduce((a, b) => a + b, 0);
}

function total(children: Child[]): Progress {
  return children.reduce(
    (t, c) => ({ nodes: t.nodes + c.progress.nodes, items: t.items + c.progress.items }),
    { nodes: 0, items: 0 },
  );
}

/** Resolves once `done()` holds, re-checked on every progress message; rejects on a timeout. */
function until(what: string, done: () => boolean): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      onProgress = null;
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(
      () => finish(new Error(`timed out after ${ROUND_TIMEOUT_MS} ms waiting for ${what}`)),
      ROUND_TIMEOUT_MS,
    );
    onProgress = () => {
      if (failure) finish(new Error(failure));
      else if (done()) finish();
    };
    onProgress();
  });
}

/** Removes every key matching `pattern` (SCAN + UNLINK), outside the timed region. */
async function unlinkMatching(client: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== '0');
}

interface Contender {
  name: string;
  /** Its worker processes (their CPU is measured per round). */
  children: Child[];
  /** Runs one timed round; resolves with the operations done. */
  run: () => Promise<number>;
  /** Untimed clean-up after a round. */
  after?: () => Promise<void>;
}

/**
 * Redis's own CPU seconds, the commands it has run (INFO commandstats: the commands scripts run
 * are counted too) and the read events it has processed (INFO stats `total_reads_processed`:
 * one per batch of bytes read from a client, i.e. about one per client round trip) so far.
 */
async function redisUsage(admin: Redis): Promise<{ cpu: number; commands: number; reads: number }> {
  const info = await admin.info('all');
  const num = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1]);
  let commands = 0;
  for (const m of info.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) commands += Number(m[1]);
  return {
    cpu: num('used_cpu_user') + num('used_cpu_sys'),
    commands,
    reads: num('total_reads_processed'),
  };
}

/** Summed over a contender's measured rounds. */
interface Usage {
  /** Redis CPU, s. */
  cpu: number;
  commands: number;
  reads: number;
  /** Its worker processes' CPU, µs. */
  workerCpuUs: number;
  ops: number;
  seconds: number;
}

/** Per contender, summed over the measured rounds. */
const usage = new Map<string, Usage>();

/** One row of the per-node cost table. */
interface CostRow {
  'nodes or jobs/s': number;
  'Redis CPU µs': number;
  'Redis commands': number;
  'read events': number;
  'worker CPU µs': number;
  'Redis-bound ceiling /s': number;
}

function costRow(u: Usage): CostRow {
  const redisUs = (u.cpu / u.ops) * 1e6;
  return {
    'nodes or jobs/s': Math.round(u.ops / u.seconds),
    'Redis CPU µs': Math.round(redisUs),
    'Redis commands': Number((u.commands / u.ops).toFixed(1)),
    'read events': Number((u.reads / u.ops).toFixed(2)),
    'worker CPU µs': Math.round(u.workerCpuUs / u.ops),
    'Redis-bound ceiling /s': Math.round(1e6 / redisUs),
  };
}

async function measure(
  admin: Redis,
  caseName: string,
  contenders: Contender[],
): Promise<CaseResult> {
  const samples = new Map(contenders.map((c) => [c.name, [] as number[]]));
  for (let i = 0; i < warmup + rounds; i++) {
    for (const c of contenders) {
      globalThis.gc?.();
      const cpuBefore = await childrenCpuUs(c.children);
      const before = await redisUsage(admin);
      const start = performance.now();
      const ops = await c.run();
      const seconds = (performance.now() - start) / 1000;
      const after = await redisUsage(admin); // includes the INFO call itself: 1 command, 1 read
      const cpuAfter = await childrenCpuUs(c.children);
      await c.after?.();
      if (verbose) console.log(`  round ${i} ${c.name}: ${Math.round(ops / seconds)}/s`);
      if (i >= warmup) {
        samples.get(c.name)!.push(ops / seconds);
        const u = usage.get(c.name) ?? {
          cpu: 0,
          commands: 0,
          reads: 0,
          workerCpuUs: 0,
          ops: 0,
          seconds: 0,
        };
        u.cpu += after.cpu - before.cpu;
        u.commands += after.commands - before.commands - 1;
        u.reads += after.reads - before.reads - 1;
        u.workerCpuUs += cpuAfter - cpuBefore;
        u.ops += ops;
        u.seconds += seconds;
        usage.set(c.name, u);
      }
    }
  }
  return summarize(caseName, 'nodes or jobs/s', samples);
}

async function main(): Promise<void> {
  const began = Date.now();
  const notes: Record<string, unknown> = { 'load average at start (1 min)': loadavg()[0] };
  const cases: CaseResult[] = [];
  let server: RedisServer | null = null;
  let admin: Redis | null = null;
  let submitClient: Redis | null = null;
  let submitStore: RedisBackend | null = null;
  let submitQueues: RedisStreamQueues | null = null;
  let queue: Queue | null = null;
  const prefix = `mocra-bench-dist-${process.pid}:`;
  const bullPrefix = `mocra-bench-dist-${process.pid}-bull`;
  const queueName = 'noop';
  try {
    server = await startRedisServer();
    const url = server.url;
    admin = new Redis(url, { maxRetriesPerRequest: 1 });
    notes.redis = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? 'unknown';

    // the submitter: an engine that is never started, only used to submit each round's task
    submitStore = new RedisBackend({ redis: url, keyPrefix: prefix });
    submitClient = new Redis(url, { maxRetriesPerRequest: 2 });
    submitQueues = createRedisStreamQueues({
      client: submitClient,
      keyPrefix: prefix,
      consumer: 'bench-submitter',
    });
    const submitter = createChainEngine({
      modules: [syntheticModule()],
      store: submitStore,
      queues: submitQueues,
      workerId: 'bench-submitter',
    });
    await submitStore.connect();

    const target = new URL(url);
    queue = new Queue(queueName, {
      connection: { host: target.hostname, port: Number(target.port), maxRetriesPerRequest: null },
      prefix: bullPrefix,
    });
    await queue.waitUntilReady();

    let taskNo = 0;
    const mocraRows = new Map<number, number>();
    const bullRows = new Map<number, number>();
    for (const workers of WORKER_COUNTS) {
      const engines: Child[] = [];
      const bulls: Child[] = [];
      try {
        for (let i = 1; i <= workers; i++) {
          engines.push(
            startChild(`engine-${workers}-${i}`, {
              MODE: 'mocra',
              REDIS_URL: url,
              KEY_PREFIX: prefix,
            }),
          );
          bulls.push(
            startChild(`bullmq-${workers}-${i}`, {
              MODE: 'bullmq',
              REDIS_URL: url,
              KEY_PREFIX: bullPrefix,
              QUEUE_NAME: queueName,
            }),
          );
        }
        await Promise.all([...engines, ...bulls].map((c) => c.ready));

        const plural = workers === 1 ? 'process' : 'processes';
        const result = await measure(
          admin,
          `${workers} worker ${plural} on one Redis: chain engine nodes/s vs BullMQ no-op jobs/s`,
          [
            {
              name: `BullMQ@${bullmqVersion} (${workers} ${plural})`,
              children: bulls,
              run: async () => {
                const base = total(bulls).nodes;
                const done = until('every BullMQ job completed', () => {
                  return total(bulls).nodes - base >= JOBS;
                });
                for (let i = 0; i < JOBS; i += 1000) {
                  await queue!.addBulk(
                    Array.from({ length: Math.min(1000, JOBS - i) }, (_, j) => ({
                      name: 'noop',
                      data: { i: i + j },
                      opts: { removeOnComplete: true, removeOnFail: true },
                    })),
                  );
                }
                await done;
                return JOBS;
              },
            },
            {
              name: `mocra chain engine (${workers} ${plural})`,
              children: engines,
              run: async () => {
                const base = total(engines);
                const taskId = `round-${taskNo++}`;
                const done = until(`task ${taskId} committed`, () => {
                  const now = total(engines);
                  return (
                    now.nodes - base.nodes >= NODES_PER_TASK &&
                    now.items - base.items >= ITEMS_PER_TASK
                  );
                });
                await submitter.submit({
                  taskId,
                  account: 'bench',
                  platform: 'synthetic',
                  modules: [MODULE_ID],
                });
                await done;
                return NODES_PER_TASK;
              },
              // the finished task's state, so Redis does not grow from round to round
              after: async () => {
                await unlinkMatching(admin!, `${prefix}chain:{t:round-${taskNo - 1}}*`);
              },
            },
          ],
        );
        printCase(result);
        cases.push(result);
        bullRows.set(workers, result.rows[0]!.median);
        mocraRows.set(workers, result.rows[1]!.median);
      } finally {
        await Promise.all([...engines, ...bulls].map(stopChild));
        itemLatency.set(
          workers,
          engines.flatMap((c) => c.latency),
        );
      }
      // the engines left nothing behind in their streams
      for (const q of ['task', 'parser', 'error']) {
        const dead = await admin.xlen(`${prefix}chain:queue:${q}:dead`);
        if (dead > 0) throw new Error(`${dead} dead letters in the ${q} queue`);
      }
    }

    const scaling: CaseResult = {
      case: 'chain engine scaling with worker processes on one Redis',
      unit: 'nodes/s',
      rows: cases.map((c, i) => ({ ...c.rows[1]!, name: `mocra, ${WORKER_COUNTS[i]} worker(s)` })),
    };
    printCase(scaling);
    cases.push(scaling);

    const ratios: Record<string, number> = {};
    for (const w of WORKER_COUNTS)
      ratios[`${w} worker(s)`] = Number((mocraRows.get(w)! / bullRows.get(w)!).toFixed(2));
    const first = WORKER_COUNTS[0]!;
    const speedups: Record<string, number> = {};
    for (const w of WORKER_COUNTS) {
      speedups[`mocra ${w} vs ${first}`] = Number(
        (mocraRows.get(w)! / mocraRows.get(first)!).toFixed(2),
      );
      speedups[`BullMQ ${w} vs ${first}`] = Number(
        (bullRows.get(w)! / bullRows.get(first)!).toFixed(2),
      );
    }
    const perOp: Record<string, CostRow> = {};
    for (const [name, u] of usage) perOp[name] = costRow(u);
    const latency: Record<string, ReturnType<typeof latencySummary>> = {};
    for (const [w, samples] of itemLatency) latency[`${w} worker(s)`] = latencySummary(samples);
    console.log('\nitem latency, commit → onItem (ms):', latency);
    console.log('\ncost per node (mocra) or job (BullMQ), measured rounds:');
    console.table(perOp);
    console.log('mocra nodes/s ÷ BullMQ jobs/s:', ratios);
    console.log('scaling:', speedups);
    Object.assign(notes, {
      'mocra nodes/s ÷ BullMQ jobs/s': ratios,
      scaling: speedups,
      'cost per node or job (measured rounds)': perOp,
      'cost columns':
        'nodes or jobs/s over all measured rounds; Redis CPU (INFO cpu, user+sys), commands (INFO commandstats, the commands scripts run included) and read events (INFO stats total_reads_processed, ≈ client round trips) per node or job; worker CPU: the worker processes of that contender (process.cpuUsage); Redis-bound ceiling = 1 s ÷ Redis CPU per node or job',
      'item latency ms, commit (ModuleStepAdvanced) → onItem, all rounds of each worker count, in the committing process':
        latency,
      'load average at end (1 min)': loadavg()[0],
      'wall time (s)': Math.round((Date.now() - began) / 1000),
      setup: `worker processes ${WORKER_COUNTS.join('/')} (node --import tsx) on one private redis-server; per process concurrency ${CONCURRENCY} (engine parser stage; publish ${CONCURRENCY * 2}) or BullMQ Worker concurrency ${CONCURRENCY}; ${rounds} rounds after ${warmup} warm-up per contender, interleaved; both sets of processes alive during each other's rounds (idle)`,
      workload: `mocra: one task per round of a 3-step synthetic module (1 root → ${LISTS} lists → ${PER_LIST} leaves each = ${NODES_PER_TASK} nodes, ${ITEMS_PER_TASK} items), downloads answered in process (no HTTP); timed from submit() to the last node committed and last item received. BullMQ: ${JOBS} no-op jobs per round added with addBulk (1,000 per call) inside the timed region, timed to the last completed event`,
    });
    console.log(`\nwrote ${writeResults('distributed', cases, notes)}`);
  } finally {
    await Promise.all([...alive].map(stopChild));
    await queue?.obliterate({ force: true }).catch(() => undefined);
    await queue?.close().catch(() => undefined);
    if (submitQueues) {
      const { task, parser, error } = submitQueues;
      await Promise.all([task.shutdown(), parser.shutdown(), error.shutdown()]);
    }
    await submitStore?.close().catch(() => undefined);
    submitClient?.disconnect();
    admin?.disconnect();
    await server?.stop();
  }
}

await main();
