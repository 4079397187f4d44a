/**
 * The tables of bench/distributed, from the measured rounds: cost per node or job (summed over
 * every Redis server), each master's share on a cluster, where the CPU went during the rounds
 * (the scaling evidence) and the engine's counters per 1,000 nodes. Each table is a record of
 * rows (a record of columns), which bench/run-all.ts renders as a markdown table.
 */
import type { IdleSample, RoundSample, WorkerCountResult } from './measure.js';
import { NO_USAGE, addUsage, type RedisUsage } from './redis-usage.js';

export type Table = Record<string, Record<string, number | string>>;

/** One contender at one worker count, its measured rounds added up. */
export interface Totals {
  name: string;
  kind: 'mocra' | 'bullmq';
  workers: number;
  ops: number;
  seconds: number;
  /** Per server, in `target.servers` order. */
  perServer: RedisUsage[];
  /** All servers. */
  redis: RedisUsage;
  workerCpuUs: number;
  /** CPU of each worker process, µs. */
  perWorkerCpuUs: number[];
  /** Nodes or jobs of each worker process. */
  perWorkerOps: number[];
  otherWorkersCpuUs: number;
  benchCpuUs: number;
  /** Core-seconds the machine was busy / stolen. */
  busyCoreSeconds: number;
  stealCoreSeconds: number;
  /** Core-seconds of our autogroups and of the others; busy other groups × seconds. */
  ourGroupCoreSeconds: number;
  otherGroupCoreSeconds: number;
  otherGroupsBusySeconds: number;
  counters: Record<string, number>;
}

export function totals(result: WorkerCountResult, servers: number): Totals[] {
  return result.contenders.map((c) => {
    const t: Totals = {
      name: c.name,
      kind: c.kind,
      workers: result.workers,
      ops: 0,
      seconds: 0,
      perServer: Array.from({ length: servers }, () => NO_USAGE),
      redis: NO_USAGE,
      workerCpuUs: 0,
      perWorkerCpuUs: Array.from({ length: result.workers }, () => 0),
      perWorkerOps: Array.from({ length: result.workers }, () => 0),
      otherWorkersCpuUs: 0,
      benchCpuUs: 0,
      busyCoreSeconds: 0,
      stealCoreSeconds: 0,
      ourGroupCoreSeconds: 0,
      otherGroupCoreSeconds: 0,
      otherGroupsBusySeconds: 0,
      counters: {},
    };
    for (const r of c.rounds) add(t, r);
    return t;
  });
}

function add(t: Totals, r: RoundSample): void {
  t.ops += r.ops;
  t.seconds += r.seconds;
  r.redis.forEach((u, s) => {
    t.perServer[s] = addUsage(t.perServer[s]!, u);
    t.redis = addUsage(t.redis, u);
  });
  r.workerOps.forEach((n, i) => (t.perWorkerOps[i]! += n));
  r.workers.forEach((w, i) => {
    t.workerCpuUs += w.cpuUs;
    t.perWorkerCpuUs[i]! += w.cpuUs;
    for (const [k, v] of Object.entries(w.counters)) t.counters[k] = (t.counters[k] ?? 0) + v;
  });
  t.otherWorkersCpuUs += r.otherWorkersCpuUs;
  t.benchCpuUs += r.benchCpuUs;
  t.busyCoreSeconds += r.busyCores * r.seconds;
  t.stealCoreSeconds += r.stealCores * r.seconds;
  t.ourGroupCoreSeconds += r.ourGroupCores * r.seconds;
  t.otherGroupCoreSeconds += r.otherGroupCores * r.seconds;
  t.otherGroupsBusySeconds += r.otherGroupsBusy * r.seconds;
}

const round = (n: number, digits = 0): number => Number(n.toFixed(digits));

/**
 * Cost per node (mocra) or per job (BullMQ), all servers added. On a cluster also the ceiling set
 * by the busiest master (each master is one core): 1 s ÷ its Redis CPU per node.
 */
export function costTable(all: Totals[], cluster: boolean): Table {
  const table: Table = {};
  for (const t of all) {
    const redisUs = (t.redis.cpu / t.ops) * 1e6;
    const row: Record<string, number> = {
      'nodes or jobs/s': round(t.ops / t.seconds),
      'Redis CPU µs': round(redisUs),
      'Redis commands': round(t.redis.commands / t.ops, 1),
      'read events': round(t.redis.reads / t.ops, 2),
      'worker CPU µs': round(t.workerCpuUs / t.ops),
      'Redis-bound ceiling /s': round(1e6 / redisUs),
    };
    if (cluster) {
      const busiest = Math.max(...t.perServer.map((u) => u.cpu));
      row['ceiling, busiest master /s'] = round(t.ops / busiest);
    }
    table[t.name] = row;
  }
  return table;
}

/** Each master's share of the Redis CPU, commands and read events, per contender. */
export function shareTable(all: Totals[], masters: readonly string[]): Table {
  const table: Table = {};
  for (const t of all) {
    t.perServer.forEach((u, s) => {
      table[`${t.name}, ${masters[s]}`] = {
        'Redis CPU %': round((u.cpu / t.redis.cpu) * 100),
        'commands %': round((u.commands / t.redis.commands) * 100),
        'read events %': round((u.reads / t.redis.reads) * 100),
        'Redis CPU µs per node or job': round((u.cpu / t.ops) * 1e6),
        'commands per node or job': round(u.commands / t.ops, 1),
      };
    });
  }
  return table;
}

/**
 * Where the CPU went during the rounds, in cores (CPU seconds per wall second): Redis (all
 * servers, and the busiest: one Redis uses at most one core), the contender's workers (all, the
 * busiest, and the busiest one's share of the nodes or jobs), the bench process, the other contender's idle workers, the whole machine (busy,
 * stolen), what is left for everything else on the machine (other users' processes), and the
 * same split by scheduler autogroup (one per session: the scheduler shares the CPU between them
 * first): our sessions' cores, the other sessions' cores and how many other sessions were busy.
 */
export function cpuTable(all: Totals[]): Table {
  const table: Table = {};
  for (const t of all) {
    const cores = (us: number): number => round(us / 1e6 / t.seconds, 2);
    const redis = t.redis.cpu / t.seconds;
    const busiestRedis = Math.max(...t.perServer.map((u) => u.cpu)) / t.seconds;
    const ours = t.redis.cpu * 1e6 + t.workerCpuUs + t.benchCpuUs + t.otherWorkersCpuUs;
    table[t.name] = {
      'nodes or jobs/s': round(t.ops / t.seconds),
      'Redis cores': round(redis, 2),
      'busiest Redis server cores': round(busiestRedis, 2),
      'worker cores': cores(t.workerCpuUs),
      'busiest worker cores': cores(Math.max(...t.perWorkerCpuUs)),
      'busiest worker share of the work %': round(
        (Math.max(...t.perWorkerOps) / t.perWorkerOps.reduce((a, b) => a + b, 0)) * 100,
      ),
      'bench process cores': cores(t.benchCpuUs),
      'idle other contender cores': cores(t.otherWorkersCpuUs),
      'machine busy cores': round(t.busyCoreSeconds / t.seconds, 2),
      'machine steal cores': round(t.stealCoreSeconds / t.seconds, 2),
      'other processes cores': round(t.busyCoreSeconds / t.seconds - ours / 1e6 / t.seconds, 2),
      'our sessions cores': round(t.ourGroupCoreSeconds / t.seconds, 2),
      'other sessions cores': round(t.otherGroupCoreSeconds / t.seconds, 2),
      'other busy sessions': round(t.otherGroupsBusySeconds / t.seconds, 1),
    };
  }
  return table;
}

/**
 * Engine counters that tell contention apart, and the workers' context switches, per 1,000 nodes
 * (jobs), one column per contender and worker count.
 */
export function counterTable(all: Totals[]): Table {
  const table: Table = {};
  const interesting =
    /^(context switches|ptm_claim_total|ptm_commit_total|message_skipped_total|queue_reclaimed_total|sweep_total|outbox_lease_expired_total|queue_backpressure_total|ptm_zombie_recover_total|state_script_duration_ms|task_ingress_total)/;
  for (const t of all) {
    const column = `${t.kind === 'mocra' ? 'mocra' : 'BullMQ'}, ${t.workers} worker(s)`;
    for (const [series, n] of Object.entries(t.counters)) {
      if (!interesting.test(series)) continue;
      const name = series.replace('state_script_duration_ms', 'state script calls');
      (table[name] ??= {})[column] = round((n / t.ops) * 1000, 1);
    }
  }
  // every column in order; 0 where the engine never counted it, blank where BullMQ has no such thing
  const columns = all.map((t) => ({
    name: `${t.kind === 'mocra' ? 'mocra' : 'BullMQ'}, ${t.workers} worker(s)`,
    blank: t.kind === 'bullmq',
  }));
  for (const [name, row] of Object.entries(table)) {
    const own = name.startsWith('context switches');
    table[name] = Object.fromEntries(
      columns.map((c) => [c.name, row[c.name] ?? (c.blank && !own ? '' : 0)]),
    );
  }
  return sortRows(table);
}

/**
 * Redis commands per node or job by command name (scripts' inner commands under their own
 * names), one column per contender; commands under 0.05 per node everywhere are left out.
 */
export function commandTable(all: Totals[]): Table {
  const table: Table = {};
  for (const t of all) {
    for (const [command, calls] of Object.entries(t.redis.byCommand)) {
      (table[command] ??= {})[t.name] = round(calls / t.ops, 2);
    }
  }
  for (const [command, row] of Object.entries(table)) {
    if (Object.values(row).every((v) => Number(v) < 0.05)) delete table[command];
    // every column in contender order, 0 where the contender never ran the command
    else table[command] = Object.fromEntries(all.map((t) => [t.name, row[t.name] ?? 0]));
  }
  return sortRows(table);
}

/** Both sets alive and idle: Redis and worker load per second. */
export function idleRow(idle: IdleSample): Record<string, number> {
  const redis = idle.redis.reduce(addUsage, NO_USAGE);
  return {
    seconds: round(idle.seconds, 1),
    'Redis cores': round(redis.cpu / idle.seconds, 3),
    'Redis commands/s': round(redis.commands / idle.seconds),
    'engine workers cores': round(idle.engineCpuUs / 1e6 / idle.seconds, 3),
    'BullMQ workers cores': round(idle.bullmqCpuUs / 1e6 / idle.seconds, 3),
  };
}

function sortRows(table: Table): Table {
  return Object.fromEntries(Object.entries(table).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Whether the rounds' nodes/s can say anything about scaling: not when the machine was fully
 * busy (≥ 95 % of its cores) — the processes then share whatever CPU the scheduler gives the run.
 */
export function scalingVerdict(all: Totals[], cores: number): string {
  const busy = all.map((t) => t.busyCoreSeconds / t.seconds);
  const others = all.map((t) => t.otherGroupCoreSeconds / t.seconds);
  const ours = all.map((t) => t.ourGroupCoreSeconds / t.seconds);
  const range = (v: number[]): string =>
    `${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)}`;
  const saturated = busy.filter((b) => b >= 0.95 * cores).length;
  const head =
    saturated === all.length
      ? `the machine was fully busy in every round (${range(busy)} of ${cores} cores)`
      : `the machine was fully busy in ${saturated} of ${all.length} contender × worker-count rows (${range(busy)} of ${cores} cores)`;
  return `${head}; other sessions used ${range(others)} cores and this run's sessions ${range(ours)}; where the machine is full, nodes/s follow the CPU share the run got, not the engine — compare the CPU µs per node instead`;
}

/**
 * What would bind on an idle machine with `cores` cores, from the CPU each node (job) cost in
 * this run: the whole machine (all CPU per node: Redis, the workers, the bench process that
 * submits or adds the jobs), the worker processes (each one
 * core at most), Redis (its busiest server, one core at most). Nodes/s cannot rise above the
 * lowest; `bound by` names it.
 */
export function capacityTable(all: Totals[], cores: number): Table {
  const table: Table = {};
  for (const t of all) {
    const perOp = (us: number): number => us / t.ops;
    const allUs = perOp(t.redis.cpu * 1e6 + t.workerCpuUs + t.benchCpuUs);
    const busiestRedisUs = perOp(Math.max(...t.perServer.map((u) => u.cpu)) * 1e6);
    const ceilings: Record<string, number> = {
      machine: (cores * 1e6) / allUs,
      workers: (t.workers * 1e6) / perOp(t.workerCpuUs),
      Redis: 1e6 / busiestRedisUs,
    };
    const [bound] = Object.entries(ceilings).sort((a, b) => a[1] - b[1])[0]!;
    table[t.name] = {
      'nodes or jobs/s (this run)': round(t.ops / t.seconds),
      'all CPU µs per node or job': round(allUs),
      [`ceiling: ${cores} idle cores /s`]: round(ceilings.machine!),
      'ceiling: one core per worker /s': round(ceilings.workers!),
      'ceiling: busiest Redis /s': round(ceilings.Redis!),
      'bound by': bound!,
    };
  }
  return table;
}
