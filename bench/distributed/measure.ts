/**
 * The rounds of bench/distributed on one target for one worker count: the engine's worker
 * processes and BullMQ's are started (untimed), both sets are measured idle for a moment, then
 * their rounds are interleaved, then both sets are stopped. Each round records what every Redis
 * server did (per server), what each of the contender's workers used (CPU, engine counters),
 * what the other, idle set used meanwhile, the bench process's own CPU and the machine's.
 */
import { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import {
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  type ChainEngine,
  type RedisStreamQueues,
} from '../../src/index.js';
import { summarize, type CaseResult } from '../lib/harness.js';
import {
  ChildPool,
  childrenUsage,
  stopChild,
  sumUsage,
  total,
  usageSince,
  type Child,
  type ChildUsage,
} from './children.js';
import {
  autogroupOf,
  groupCoresBetween,
  machineCoresBetween,
  machineTicks,
  processTicks,
} from './machine-cpu.js';
import { usageBetween, usageOfAll, type RedisUsage } from './redis-usage.js';
import { ITEMS_PER_TASK, MODULE_ID, NODES_PER_TASK, syntheticModule } from './synthetic.js';
import { connectEveryMaster, type Target } from './targets.js';

export interface MeasureConfig {
  rounds: number;
  warmup: number;
  /** Per worker process: the engine's parser stage, BullMQ's Worker concurrency. */
  concurrency: number;
  roundTimeoutMs: number;
  /** How long both sets are measured idle before the rounds, ms. */
  idleMs: number;
  bullmqVersion: string;
  verbose: boolean;
  /**
   * Start each worker process in a session of its own, as separate services would be: with
   * `kernel.sched_autogroup_enabled` (Linux's default on desktops and many VMs) the scheduler
   * first shares the CPU between sessions, so workers left in the bench's session share one
   * session's part of a busy machine however many there are.
   */
  ownSession: boolean;
}

/** One measured round of one contender. */
export interface RoundSample {
  ops: number;
  seconds: number;
  /** What each server did, in `target.servers` order. */
  redis: RedisUsage[];
  /** What each of its worker processes used. */
  workers: ChildUsage[];
  /** Nodes (jobs) each of its worker processes committed (completed) in the round. */
  workerOps: number[];
  /** CPU of the other contender's worker processes (idle during this round), µs. */
  otherWorkersCpuUs: number;
  /** CPU of the bench process itself (submits, BullMQ's addBulk, IPC), µs. */
  benchCpuUs: number;
  /** The machine: average cores busy and stolen over the round. */
  busyCores: number;
  stealCores: number;
  /** Cores used by the scheduler autogroups our processes are in (bench, Redis, workers). */
  ourGroupCores: number;
  /** Cores used by every other autogroup (other users' sessions). */
  otherGroupCores: number;
  /** Other autogroups that used more than 0.05 core during the round. */
  otherGroupsBusy: number;
}

export interface ContenderRounds {
  name: string;
  kind: 'mocra' | 'bullmq';
  rounds: RoundSample[];
}

/** Both sets alive, no work given: what polling alone costs. */
export interface IdleSample {
  seconds: number;
  redis: RedisUsage[];
  engineCpuUs: number;
  bullmqCpuUs: number;
}

export interface WorkerCountResult {
  workers: number;
  case: CaseResult;
  /** BullMQ first, then mocra. */
  contenders: ContenderRounds[];
  idle: IdleSample;
  /** Commit → onItem samples (ms) of the engine workers, all rounds. */
  latency: number[];
  /** The warm-up rounds (fresh processes, code not yet optimised), per contender, in order. */
  warmup: WarmupSample[];
}

/** What one warm-up round cost a contender, per node or job. */
export interface WarmupSample {
  name: string;
  round: number;
  /** Its worker processes' CPU (main thread, GC and the optimising compiler's threads), µs. */
  workerCpuUs: number;
  /** Every server's CPU, µs. */
  redisCpuUs: number;
}

/** What stays up across worker counts on one target: the submitter and BullMQ's Queue. */
export class Session {
  readonly prefix = `mocra-bench-dist-${process.pid}:`;
  readonly bullPrefix: string;
  readonly queueName = 'noop';
  readonly pool: ChildPool;
  readonly #store: RedisBackend;
  readonly #queueClient: Redis | Cluster;
  readonly #queues: RedisStreamQueues;
  readonly #submitter: ChainEngine;
  readonly #bullClient: Redis | Cluster;
  readonly #queue: Queue;
  #round = 0;

  private constructor(
    readonly target: Target,
    readonly config: MeasureConfig,
  ) {
    this.pool = new ChildPool(config.concurrency, config.ownSession);
    this.bullPrefix = target.bullPrefix(`mocra-bench-dist-${process.pid}-bull`);
    // the submitter: an engine that is never started, only used to submit each round's tasks
    this.#store = new RedisBackend({ redis: target.storeConnection, keyPrefix: this.prefix });
    this.#queueClient = target.client();
    this.#queues = createRedisStreamQueues({
      client: this.#queueClient,
      keyPrefix: this.prefix,
      consumer: 'bench-submitter',
    });
    this.#submitter = createChainEngine({
      modules: [syntheticModule()],
      store: this.#store,
      queues: this.#queues,
      workerId: 'bench-submitter',
    });
    this.#bullClient = target.client({ maxRetriesPerRequest: null });
    this.#queue = new Queue(this.queueName, {
      connection: this.#bullClient,
      prefix: this.bullPrefix,
    });
  }

  static async open(target: Target, config: MeasureConfig): Promise<Session> {
    const session = new Session(target, config);
    await session.#store.connect();
    await connectEveryMaster(session.#store);
    await session.#queue.waitUntilReady();
    return session;
  }

  /** The server holding the engine's parser stream (every node passes through it). */
  streamServers(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const q of ['task', 'parser', 'error'])
      out[q] = this.target.serverOf(`${this.prefix}chain:queue:${q}`);
    return out;
  }

  /** The server holding BullMQ's queue (all its keys share the prefix's hash tag on a cluster). */
  bullServer(): string {
    return this.target.serverOf(`${this.bullPrefix}:${this.queueName}:wait`);
  }

  async close(): Promise<void> {
    await this.pool.stopAll();
    await this.#queue.obliterate({ force: true }).catch(() => undefined);
    await this.#queue.close().catch(() => undefined);
    this.#bullClient.disconnect();
    const { task, parser, error } = this.#queues;
    await Promise.all([task.shutdown(), parser.shutdown(), error.shutdown()]);
    await this.#store.close().catch(() => undefined);
    this.#queueClient.disconnect();
  }

  /** Starts `workers` processes of each contender, measures them idle, then runs the rounds. */
  async measure(workers: number): Promise<WorkerCountResult> {
    const { target, config } = this;
    const engines: Child[] = [];
    const bulls: Child[] = [];
    const plural = workers === 1 ? 'process' : 'processes';
    const contenders: (ContenderRounds & { children: Child[]; run: () => Promise<number> })[] = [
      {
        name: `BullMQ@${config.bullmqVersion} (${workers} ${plural})`,
        kind: 'bullmq',
        rounds: [],
        children: bulls,
        run: () => this.#bullRound(bulls),
      },
      {
        name: `mocra chain engine (${workers} ${plural})`,
        kind: 'mocra',
        rounds: [],
        children: engines,
        run: () => this.#engineRound(engines),
      },
    ];
    let result: WorkerCountResult;
    try {
      for (let i = 1; i <= workers; i++) {
        const tag = `${target.kind}-${workers}-${i}`;
        engines.push(
          this.pool.start(`engine-${tag}`, {
            ...target.workerEnv,
            MODE: 'mocra',
            KEY_PREFIX: this.prefix,
          }),
        );
        bulls.push(
          this.pool.start(`bullmq-${tag}`, {
            ...target.workerEnv,
            MODE: 'bullmq',
            KEY_PREFIX: this.bullPrefix,
            QUEUE_NAME: this.queueName,
          }),
        );
      }
      await Promise.all([...engines, ...bulls].map((c) => c.ready));
      const idle = await this.#idle(engines, bulls);

      const samples = new Map(contenders.map((c) => [c.name, [] as number[]]));
      const warmup: WarmupSample[] = [];
      for (let i = 0; i < config.warmup + config.rounds; i++) {
        for (const c of contenders) {
          const others = c.kind === 'mocra' ? bulls : engines;
          globalThis.gc?.();
          const mineBefore = await childrenUsage(c.children);
          const opsBefore = c.children.map((ch) => ch.progress.nodes);
          const othersBefore = await childrenUsage(others);
          const redisBefore = await usageOfAll(target.servers.map((s) => s.admin));
          const benchBefore = process.cpuUsage();
          const ticksBefore = machineTicks();
          const processesBefore = processTicks();
          const start = performance.now();
          const ops = await c.run();
          const seconds = (performance.now() - start) / 1000;
          const machine = machineCoresBetween(ticksBefore, machineTicks());
          const groups = groupCoresBetween(processesBefore, processTicks(), seconds);
          const bench = process.cpuUsage(benchBefore);
          const redisAfter = await usageOfAll(target.servers.map((s) => s.admin));
          const othersAfter = await childrenUsage(others);
          const mineAfter = await childrenUsage(c.children);
          const workerOps = c.children.map((ch, k) => ch.progress.nodes - opsBefore[k]!);
          await this.#afterRound(c.kind);
          const workerCpuUs = sumUsage(usageSince(mineAfter, mineBefore)).cpuUs / ops;
          const redisCpuUs =
            (redisAfter.reduce(
              (sum, after, s) => sum + usageBetween(redisBefore[s]!, after).cpu,
              0,
            ) *
              1e6) /
            ops;
          if (config.verbose)
            console.log(
              `  round ${i} ${c.name}: ${Math.round(ops / seconds)}/s, worker ${Math.round(workerCpuUs)} µs, Redis ${Math.round(redisCpuUs)} µs per op`,
            );
          if (i < config.warmup) {
            warmup.push({ name: c.name, round: i + 1, workerCpuUs, redisCpuUs });
            continue;
          }
          samples.get(c.name)!.push(ops / seconds);
          c.rounds.push({
            ops,
            seconds,
            redis: redisAfter.map((after, s) => usageBetween(redisBefore[s]!, after)),
            workers: usageSince(mineAfter, mineBefore),
            workerOps,
            otherWorkersCpuUs: sumUsage(usageSince(othersAfter, othersBefore)).cpuUs,
            benchCpuUs: bench.user + bench.system,
            busyCores: machine.busyCores,
            stealCores: machine.stealCores,
            ...groupShares(groups, [
              process.pid,
              ...[...this.pool.alive].map((ch) => ch.proc.pid!),
            ]),
          });
        }
      }
      result = {
        workers,
        case: summarize(
          `${workers} worker ${plural} on ${target.where}: chain engine nodes/s vs BullMQ no-op jobs/s`,
          'nodes or jobs/s',
          samples,
        ),
        contenders: contenders.map(({ name, kind, rounds }) => ({ name, kind, rounds })),
        idle,
        latency: [],
        warmup,
      };
    } finally {
      await Promise.all([...engines, ...bulls].map(stopChild));
    }
    await this.#checkNoDeadLetters();
    // each engine worker sends its commit → onItem samples as it stops
    result.latency = engines.flatMap((c) => c.latency);
    return result;
  }

  /** Both sets alive and given nothing to do for `idleMs`. */
  async #idle(engines: Child[], bulls: Child[]): Promise<IdleSample> {
    await new Promise((r) => setTimeout(r, 500)); // start-up work settles
    const admins = this.target.servers.map((s) => s.admin);
    const [eBefore, bBefore, rBefore] = await Promise.all([
      childrenUsage(engines),
      childrenUsage(bulls),
      usageOfAll(admins),
    ]);
    const start = performance.now();
    await new Promise((r) => setTimeout(r, this.config.idleMs));
    const seconds = (performance.now() - start) / 1000;
    const [rAfter, eAfter, bAfter] = await Promise.all([
      usageOfAll(admins),
      childrenUsage(engines),
      childrenUsage(bulls),
    ]);
    return {
      seconds,
      redis: rAfter.map((after, s) => usageBetween(rBefore[s]!, after)),
      engineCpuUs: sumUsage(usageSince(eAfter, eBefore)).cpuUs,
      bullmqCpuUs: sumUsage(usageSince(bAfter, bBefore)).cpuUs,
    };
  }

  /** BullMQ: NODES_PER_TASK jobs per task of the engine's round, added in chunks of 1,000. */
  async #bullRound(bulls: Child[]): Promise<number> {
    const jobs = NODES_PER_TASK * this.target.taskIds(0).length;
    const base = total(bulls).nodes;
    const done = this.pool.until('every BullMQ job completed', this.config.roundTimeoutMs, () => {
      return total(bulls).nodes - base >= jobs;
    });
    for (let i = 0; i < jobs; i += 1000) {
      await this.#queue.addBulk(
        Array.from({ length: Math.min(1000, jobs - i) }, (_, j) => ({
          name: 'noop',
          data: { i: i + j },
          opts: { removeOnComplete: true, removeOnFail: true },
        })),
      );
    }
    await done;
    return jobs;
  }

  /** The engine: the round's tasks submitted at once, timed to the last node and item. */
  async #engineRound(engines: Child[]): Promise<number> {
    const taskIds = this.target.taskIds(this.#round++);
    const base = total(engines);
    const done = this.pool.until(
      `tasks ${taskIds.join(', ')} committed`,
      this.config.roundTimeoutMs,
      () => {
        const now = total(engines);
        return (
          now.nodes - base.nodes >= NODES_PER_TASK * taskIds.length &&
          now.items - base.items >= ITEMS_PER_TASK * taskIds.length
        );
      },
    );
    await Promise.all(
      taskIds.map((taskId) =>
        this.#submitter.submit({
          taskId,
          account: 'bench',
          platform: 'synthetic',
          modules: [MODULE_ID],
        }),
      ),
    );
    await done;
    return NODES_PER_TASK * taskIds.length;
  }

  /** The finished tasks' state, so Redis does not grow from round to round. */
  async #afterRound(kind: 'mocra' | 'bullmq'): Promise<void> {
    if (kind !== 'mocra') return;
    for (const taskId of this.target.taskIds(this.#round - 1)) {
      for (const { admin } of this.target.servers)
        await unlinkMatching(admin, `${this.prefix}chain:{t:${taskId}}*`);
    }
  }

  /** The engines left nothing behind in their dead-letter streams. */
  async #checkNoDeadLetters(): Promise<void> {
    for (const q of ['task', 'parser', 'error']) {
      const dead = await this.#queueClient.xlen(`${this.prefix}chain:queue:${q}:dead`);
      if (dead > 0) throw new Error(`${dead} dead letters in the ${q} queue`);
    }
  }
}

/** Our autogroups' cores (those of `pids`) against the others'. */
function groupShares(
  groups: Map<string, number>,
  pids: number[],
): Pick<RoundSample, 'ourGroupCores' | 'otherGroupCores' | 'otherGroupsBusy'> {
  const ours = new Set(pids.map(autogroupOf));
  let ourGroupCores = 0;
  let otherGroupCores = 0;
  let otherGroupsBusy = 0;
  for (const [group, cores] of groups) {
    if (ours.has(group)) ourGroupCores += cores;
    else {
      otherGroupCores += cores;
      if (cores > 0.05) otherGroupsBusy++;
    }
  }
  return { ourGroupCores, otherGroupCores, otherGroupsBusy };
}

/** Removes every key matching `pattern` on one server (SCAN + UNLINK), outside the timed region. */
async function unlinkMatching(client: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== '0');
}
