/**
 * bench/distributed: the chain engine spread over 1, 2 and 4 worker processes sharing Redis
 * (state in a RedisBackend, queues as Redis Streams), beside BullMQ processing the same number of
 * no-op jobs with the same number of worker processes, in the same run — on one private
 * redis-server, and on a private 3-master Redis Cluster on loopback.
 *
 *   npm run bench -- distributed
 *   node --expose-gc --import tsx bench/distributed/index.ts
 *
 * Workload (bench/distributed/synthetic.ts): tasks of a 3-step module, root → 30 lists → 100
 * leaves each (3,031 nodes, 3,000 items per task), whose downloader answers in process at once
 * (no HTTP): what is measured is the engine and Redis. On one Redis a round is one task; on the
 * cluster a round is 3 tasks (BENCH_DIST_CLUSTER_TASKS) whose ids are chosen so that their hash
 * tags fall one on each master. Throughput is committed nodes per second, from `submit()` to the
 * last node committed and the last item received, summed over the workers (each reports its
 * counts over IPC every 10 ms). Each worker also measures, for the items it hands over, the time
 * from its node's commit to `onItem` (p50/p95 per worker count; target p95 ≤ 250 ms).
 *
 * BullMQ: as many jobs per round as the engine commits nodes, added by this process with
 * `addBulk` in chunks of 1,000 inside the timed region, timed to the last `completed` event. Each
 * BullMQ worker process runs one `Worker` with the same concurrency as each engine's parser stage
 * (BENCH_DIST_CONCURRENCY, default 16 per process). On the cluster its prefix is a hash tag
 * (`{…}`), as BullMQ requires there: all its keys share one slot, so the queue lives on one master.
 *
 * Cost per node (mocra) or per job (BullMQ), over the measured rounds, every Redis server (every
 * master) added: Redis CPU (INFO cpu), commands (INFO commandstats, scripts' inner commands
 * included), read events (INFO stats `total_reads_processed`, about one per client round trip),
 * the CPU of the contender's worker processes, and the Redis-bound ceiling, 1 s ÷ Redis CPU per
 * node; on the cluster also each master's share and the ceiling of the busiest master. Where the
 * CPU went during the rounds (Redis, workers, this process, the machine) and the engine's
 * counters (claims, commits, skips, reclaims, script calls) per 1,000 nodes show why adding
 * worker processes does or does not help.
 *
 * The defaults take about 2 minutes (1 min 41 s on the 2-core machine at load average 4–8; about
 * 4 under heavy load); BENCH_DIST_CLUSTER_WORKERS=1,2,4 adds about a minute.
 *
 * Env: BENCH_DIST_TARGETS (`standalone`, `cluster` or both, default `standalone,cluster`; a run
 * of one keeps the other's results from bench/results/distributed.json), BENCH_ROUNDS (default 7
 * on one Redis: a round is short, and BullMQ's own CPU per job moves by a third from run to run
 * with 3), BENCH_DIST_CLUSTER_ROUNDS (default 5, of three tasks each), BENCH_DIST_WARMUP
 * and BENCH_DIST_CLUSTER_WARMUP (warm-up rounds per contender before them, default 3 and 2:
 * their cost is reported apart, as the cold start of a fresh process), BENCH_DIST_WORKERS
 * (default "1,2,4") and BENCH_DIST_CLUSTER_WORKERS (default "1,2"), BENCH_DIST_CLUSTER_TASKS,
 * BENCH_DIST_LISTS, BENCH_DIST_PER_LIST; BENCH_DIST_OWN_SESSION=0 keeps the worker processes in
 * the bench's session (by default each has its own, as separate services would: with Linux's
 * scheduler autogroups, processes of one session share one session's part of a busy machine);
 * BENCH_DIST_CPU_PROF=<dir> writes a V8 CPU profile per worker; BENCH_VERBOSE=1 prints each round.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { latencySummary, printCase, writeResults, type CaseResult } from '../lib/harness.js';
import { isTable } from '../lib/notes-markdown.js';
import { Session, type MeasureConfig, type WorkerCountResult } from './measure.js';
import {
  capacityTable,
  commandTable,
  costTable,
  counterTable,
  cpuTable,
  idleRow,
  scalingVerdict,
  shareTable,
  totals,
  type Table,
} from './report.js';
import { ITEMS_PER_TASK, LISTS, NODES_PER_TASK, PER_LIST } from './synthetic.js';
import { startCluster, startStandalone, type Target, type TargetKind } from './targets.js';

const list = (value: string): number[] => value.split(',').map(Number);
const TARGETS = (process.env.BENCH_DIST_TARGETS ?? 'standalone,cluster')
  .split(',')
  .map((t) => t.trim()) as TargetKind[];
for (const t of TARGETS)
  if (t !== 'standalone' && t !== 'cluster')
    throw new Error(`BENCH_DIST_TARGETS: ${t} is neither standalone nor cluster`);
const WORKERS: Record<TargetKind, number[]> = {
  standalone: list(process.env.BENCH_DIST_WORKERS ?? '1,2,4'),
  cluster: list(process.env.BENCH_DIST_CLUSTER_WORKERS ?? '1,2'),
};
const ROUNDS: Record<TargetKind, number> = {
  standalone: Number(process.env.BENCH_ROUNDS ?? 7),
  cluster: Number(process.env.BENCH_DIST_CLUSTER_ROUNDS ?? 5),
};
/**
 * Warm-up rounds per contender before the measured ones: a fresh worker process pays for V8
 * optimising its code (on background threads, counted in its CPU) during its first thousands of
 * nodes or jobs; a service that runs for hours pays it once. They are reported apart (cold).
 */
const WARMUP: Record<TargetKind, number> = {
  standalone: Number(process.env.BENCH_DIST_WARMUP ?? 3),
  cluster: Number(process.env.BENCH_DIST_CLUSTER_WARMUP ?? 2),
};
const CLUSTER_TASKS = Number(process.env.BENCH_DIST_CLUSTER_TASKS ?? 3);
const OWN_SESSION = process.env.BENCH_DIST_OWN_SESSION !== '0';
const CONCURRENCY = Number(process.env.BENCH_DIST_CONCURRENCY ?? 16);
const bullmqVersion = (createRequire(import.meta.url)('bullmq/package.json') as { version: string })
  .version;
const RESULTS = join(import.meta.dirname, '..', 'results', 'distributed.json');

/** Cases and notes of one target; notes keys start with the target's `where`. */
interface TargetResults {
  cases: CaseResult[];
  notes: Record<string, unknown>;
}

async function runTarget(kind: TargetKind): Promise<TargetResults> {
  const began = Date.now();
  const load = loadavg()[0]!;
  const target: Target =
    kind === 'standalone' ? await startStandalone() : await startCluster(CLUSTER_TASKS);
  const config: MeasureConfig = {
    rounds: ROUNDS[kind],
    warmup: WARMUP[kind],
    concurrency: CONCURRENCY,
    roundTimeoutMs: 120_000,
    idleMs: 1_500,
    bullmqVersion,
    verbose: Boolean(process.env.BENCH_VERBOSE),
    ownSession: OWN_SESSION,
  };
  const w = target.where;
  const masters = target.servers.map((_, i) => `master ${i + 1}`);
  let session: Session | null = null;
  try {
    const info = await target.servers[0]!.admin.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    session = await Session.open(target, config);
    const results: WorkerCountResult[] = [];
    const loads: Record<string, number> = {};
    for (const workers of WORKERS[kind]) {
      loads[`${workers} worker(s)`] = loadavg()[0]!;
      const result = await session.measure(workers);
      printCase(result.case);
      results.push(result);
    }
    const cases = results.map((r) => r.case);
    const scaling: CaseResult = {
      case: `chain engine scaling with worker processes on ${w}`,
      unit: 'nodes/s',
      rows: results.map((r) => ({ ...r.case.rows[1]!, name: `mocra, ${r.workers} worker(s)` })),
    };
    printCase(scaling);
    cases.push(scaling);

    const all = results.flatMap((r) => totals(r, target.servers.length));
    const ratios: Record<string, number> = {};
    const speedups: Record<string, number> = {};
    const first = results[0]!;
    for (const r of results) {
      const [bull, mocra] = r.case.rows;
      ratios[`${r.workers} worker(s)`] = round(mocra!.median / bull!.median, 2);
      speedups[`mocra ${r.workers} vs ${first.workers}`] = round(
        mocra!.median / first.case.rows[1]!.median,
        2,
      );
      speedups[`BullMQ ${r.workers} vs ${first.workers}`] = round(
        bull!.median / first.case.rows[0]!.median,
        2,
      );
    }
    const latency: Record<string, ReturnType<typeof latencySummary>> = {};
    for (const r of results) latency[`${r.workers} worker(s)`] = latencySummary(r.latency);
    const cold: Table = {};
    for (const r of results)
      for (const sample of r.warmup) {
        const row = (cold[`${r.workers} worker(s), warm-up round ${sample.round}`] ??= {});
        const who = sample.name.startsWith('BullMQ') ? 'BullMQ' : 'mocra';
        row[`${who} worker CPU µs`] = Math.round(sample.workerCpuUs);
        row[`${who} Redis CPU µs`] = Math.round(sample.redisCpuUs);
      }
    const idle: Table = {};
    for (const r of results) idle[`${r.workers} + ${r.workers} worker(s)`] = idleRow(r.idle);

    const notes: Record<string, unknown> = {
      [`${w}: load average (1 min) at start, per worker count`]: { start: load, ...loads },
      [`${w}: mocra nodes/s ÷ BullMQ jobs/s`]: ratios,
      [`${w}: scaling`]: speedups,
      [`${w}: can nodes/s show scaling here?`]: scalingVerdict(all, cpus().length),
      [`${w}: cost per node or job (measured rounds${kind === 'cluster' ? ', all masters added' : ''})`]:
        costTable(all, kind === 'cluster'),
    };
    if (kind === 'cluster') {
      const streams = session.streamServers();
      const holds = target.servers.map((s, i) => {
        const what = Object.entries(streams)
          .filter(([, at]) => at === s.name)
          .map(([q]) => `${q} stream`);
        if (session!.bullServer() === s.name) what.push('the BullMQ queue');
        return `${masters[i]}: 1 task of each round${what.length ? `, ${what.join(', ')}` : ''}`;
      });
      notes[`${w}: what each master holds`] = holds;
      notes[`${w}: share of each master (measured rounds)`] = shareTable(all, masters);
    }
    Object.assign(notes, {
      [`${w}: where the CPU went during the rounds (cores = CPU s per wall s; the machine has 2)`]:
        cpuTable(all),
      [`${w}: what would bind on an idle ${cpus().length}-core machine, from the CPU per node or job of this run`]:
        capacityTable(all, cpus().length),
      [`${w}: engine counters and context switches per 1,000 nodes or jobs (all workers)`]:
        counterTable(all),
      [`${w}: Redis commands per node or job, by command`]: commandTable(all),
      [`${w}: warm-up rounds (fresh processes), CPU per node or job — not in the figures above`]:
        cold,
      [`${w}: idle, both sets of workers alive and given nothing`]: idle,
      [`${w}: item latency ms, commit (ModuleStepAdvanced) → onItem, in the committing process`]:
        latency,
      [`${w}: load average (1 min) at end`]: loadavg()[0],
      [`${w}: wall time (s)`]: Math.round((Date.now() - began) / 1000),
      [`${w}: setup`]: `worker processes ${WORKERS[kind].join('/')} (node --import tsx) on ${w} (redis ${version}); per process concurrency ${CONCURRENCY} (engine parser stage; publish ${CONCURRENCY * 2}) or BullMQ Worker concurrency ${CONCURRENCY}; ${config.rounds} rounds after ${config.warmup} warm-up per contender, interleaved; both sets of processes alive during each other's rounds (idle); ${OWN_SESSION ? 'each worker process in a session of its own (setsid), as separate services would be' : "worker processes in the bench's session"}`,
      [`${w}: workload`]: `mocra: ${kind === 'cluster' ? `${CLUSTER_TASKS} tasks` : 'one task'} per round of a 3-step synthetic module (1 root → ${LISTS} lists → ${PER_LIST} leaves each = ${NODES_PER_TASK} nodes, ${ITEMS_PER_TASK} items per task)${kind === 'cluster' ? ', their ids chosen so that their hash tags fall one on each master in turn' : ''}, downloads answered in process (no HTTP); timed from submit() to the last node committed and last item received. BullMQ: as many no-op jobs per round (${NODES_PER_TASK * target.taskIds(0).length}) added with addBulk (1,000 per call) inside the timed region, timed to the last completed event${kind === 'cluster' ? `; its prefix is the hash tag ${session.bullPrefix} (BullMQ's scripts need every key of a queue in one slot), so the whole queue is on one master` : ''}`,
    });
    for (const [k, v] of Object.entries(notes)) {
      if (isTable(v)) {
        console.log(`\n${k}:`);
        console.table(v);
      } else console.log(`${k}:`, v);
    }
    return { cases, notes };
  } finally {
    await session?.close();
    await target.stop();
  }
}

function round(n: number, digits: number): number {
  return Number(n.toFixed(digits));
}

/** What an earlier run left for the targets not run now. */
function kept(skipped: TargetKind[]): TargetResults {
  const out: TargetResults = { cases: [], notes: {} };
  if (skipped.length === 0 || !existsSync(RESULTS)) return out;
  const old = JSON.parse(readFileSync(RESULTS, 'utf8')) as TargetResults;
  const wheres = skipped.map((k) => (k === 'standalone' ? 'one Redis' : 'cluster'));
  out.cases = old.cases.filter((c) => wheres.some((w) => c.case.includes(w)));
  for (const [k, v] of Object.entries(old.notes))
    if (wheres.some((w) => k.startsWith(w) || k.startsWith(`a 3-master ${w}`))) out.notes[k] = v;
  return out;
}

async function main(): Promise<void> {
  const parts: TargetResults[] = [];
  for (const kind of ['standalone', 'cluster'] as const) {
    if (!TARGETS.includes(kind)) continue;
    parts.push(await runTarget(kind));
  }
  const skipped = (['standalone', 'cluster'] as const).filter((k) => !TARGETS.includes(k));
  const old = kept(skipped);
  const ordered = TARGETS.includes('standalone') ? [...parts, old] : [old, ...parts];
  const cases = ordered.flatMap((p) => p.cases);
  const notes = Object.assign({}, ...ordered.map((p) => p.notes)) as Record<string, unknown>;
  console.log(`\nwrote ${writeResults('distributed', cases, notes)}`);
}

await main();
