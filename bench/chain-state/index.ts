/**
 * bench/chain-state: the chain state machine's hot path, one claim followed by one
 * commitSuccess (one successor, one item) per node, as the engine runs it, at concurrency 50:
 * on LocalBackend (in-process) and on Redis (one Lua script per transition); beside it BullMQ
 * processing no-op jobs with a Worker at concurrency 50 on the same Redis in the same run.
 *
 *   node --expose-gc --import tsx bench/chain-state/index.ts
 *
 * REDIS_URL points it at an existing disposable server (keys go under a private prefix and
 * are removed afterwards); otherwise a private redis-server is started on 127.0.0.1.
 * BENCH_ROUNDS, BENCH_CHAIN_LOCAL_PAIRS, BENCH_CHAIN_REDIS_PAIRS and BENCH_CHAIN_JOBS size it;
 * BENCH_VERBOSE=1 prints every round.
 */
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import {
  ClaimCode,
  CommitCode,
  LocalChainState,
  RedisChainState,
  type ChainStateStore,
  type NodeAddress,
} from '../../src/chain/state/index.js';
import { LocalBackend } from '../../src/store/local-backend.js';
import { RedisBackend } from '../../src/store/redis-backend.js';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import { printCase, summarize, writeResults, type CaseResult } from '../lib/harness.js';

const CONCURRENCY = 50;
const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const warmup = 1;
const LOCAL_PAIRS = Number(process.env.BENCH_CHAIN_LOCAL_PAIRS ?? 30_000);
const REDIS_PAIRS = Number(process.env.BENCH_CHAIN_REDIS_PAIRS ?? 15_000);
const JOBS = Number(process.env.BENCH_CHAIN_JOBS ?? 15_000);
const LEASE_MS = 30_000;
const bullmqVersion = (createRequire(import.meta.url)('bullmq/package.json') as { version: string })
  .version;

/** One contender: `setup` and `teardown` run outside the timed region, `run` inside it. */
interface Timed {
  name: string;
  setup?: () => Promise<void>;
  run: () => Promise<number>;
  teardown?: () => Promise<void>;
}

/** Interleaved rounds like the shared harness, with untimed setup and teardown per round. */
async function measure(caseName: string, unit: string, contenders: Timed[]): Promise<CaseResult> {
  const samples = new Map(contenders.map((c) => [c.name, [] as number[]]));
  for (let i = 0; i < warmup + rounds; i++) {
    for (const c of contenders) {
      await c.setup?.();
      globalThis.gc?.();
      const start = performance.now();
      const ops = await c.run();
      const seconds = (performance.now() - start) / 1000;
      await c.teardown?.();
      if (process.env.BENCH_VERBOSE)
        console.log(`  round ${i} ${c.name}: ${Math.round(ops / seconds)}`);
      if (i >= warmup) samples.get(c.name)!.push(ops / seconds);
    }
  }
  return summarize(caseName, unit, samples);
}

let roundNo = 0;

/**
 * `pairs` claim+commit pairs by CONCURRENCY workers. Each worker walks its own chain of one
 * task: claim step s (step 0 is the module's root), commit it with successor s+1 and one item,
 * then claim that successor, as the engine does once the outbox has published it.
 */
async function pairs(state: ChainStateStore, total: number): Promise<number> {
  const round = roundNo++;
  let started = 0;
  const worker = async (w: number): Promise<void> => {
    const owner = `bench-worker-${w}`;
    const base = {
      taskId: `bench-task-${round}-${w}`,
      runId: `run-${round}`,
      account: 'acct',
      platform: 'web',
      moduleId: 'listing',
    };
    let prefix = '';
    for (let step = 0; started < total; step++) {
      started++;
      const node: NodeAddress = { ...base, stepIdx: step, prefixRequest: prefix };
      const claim = await state.claim({
        node,
        owner,
        leaseMs: LEASE_MS,
        epoch: 0,
        root: step === 0,
      });
      if (claim.code !== ClaimCode.EXECUTE) throw new Error(`claim returned ${claim.code}`);
      const nextPrefix = `GET https://example.com/list?page=${step + 1}`;
      const next: NodeAddress = { ...base, stepIdx: step + 1, prefixRequest: nextPrefix };
      const code = await state.commitSuccess({
        node,
        owner,
        version: claim.version,
        successors: [
          {
            node: next,
            message: JSON.stringify({
              kind: 'ptm',
              taskId: base.taskId,
              step: step + 1,
              prefix: nextPrefix,
            }),
          },
        ],
        items: [JSON.stringify({ kind: 'item', step, url: `https://example.com/item/${step}` })],
      });
      if (code !== CommitCode.COMMIT_OK) throw new Error(`commitSuccess returned ${code}`);
      prefix = nextPrefix;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  return total;
}

/** Removes every key under `pattern` (SCAN + UNLINK); for the bench's private prefixes only. */
async function unlinkMatching(client: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [nextCursor, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = nextCursor;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== '0');
}

async function main(): Promise<void> {
  const cases: CaseResult[] = [];
  const notes: Record<string, unknown> = { 'load average at start (1 min)': loadavg()[0] };

  let local = new LocalBackend({ keyPrefix: 'b:' });
  let localState = new LocalChainState(local);
  const localCase = await measure(
    `in-process claim+commit pairs at concurrency ${CONCURRENCY}`,
    'pairs/s',
    [
      {
        name: 'mocra LocalChainState',
        setup: async () => {
          await local.close();
          local = new LocalBackend({ keyPrefix: 'b:' });
          localState = new LocalChainState(local);
        },
        run: () => pairs(localState, LOCAL_PAIRS),
      },
    ],
  );
  await local.close();
  printCase(localCase);
  cases.push(localCase);

  let server: RedisServer | null = null;
  let url = process.env.REDIS_URL;
  if (!url) {
    server = await startRedisServer();
    url = server.url;
  }
  const prefix = `mocra-bench-${process.pid}`;
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const backend = new RedisBackend({ redis: url, keyPrefix: `${prefix}:` });
  const target = new URL(url);
  const connection = {
    host: target.hostname,
    port: Number(target.port || 6379),
    ...(target.password ? { password: decodeURIComponent(target.password) } : {}),
    ...(target.pathname.length > 1 ? { db: Number(target.pathname.slice(1)) } : {}),
    maxRetriesPerRequest: null,
  };
  const queueName = `${prefix}-noop`;
  const queue = new Queue(queueName, { connection, prefix: `${prefix}-bull` });
  try {
    await admin.connect();
    await backend.connect();
    const redisState = new RedisChainState(backend);
    const info = await admin.info('server');
    notes.redis = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';

    let worker: Worker | null = null;
    let completed = 0;
    let failure: Error | null = null;
    let onDone: (() => void) | null = null;
    const redisCase = await measure(
      `Redis at concurrency ${CONCURRENCY}: claim+commit pairs vs BullMQ no-op jobs`,
      'pairs or jobs/s',
      [
        {
          name: `BullMQ@${bullmqVersion} Worker (no-op jobs)`,
          setup: async () => {
            for (let i = 0; i < JOBS; i += 1000) {
              await queue.addBulk(
                Array.from({ length: Math.min(1000, JOBS - i) }, (_, j) => ({
                  name: 'noop',
                  data: { i: i + j },
                  opts: { removeOnComplete: true, removeOnFail: true },
                })),
              );
            }
            completed = 0;
            failure = null;
            worker = new Worker(queueName, async () => undefined, {
              connection,
              prefix: `${prefix}-bull`,
              concurrency: CONCURRENCY,
              autorun: false,
            });
            worker.on('failed', (_job, error) => {
              failure = error;
              onDone?.();
            });
            worker.on('completed', () => {
              if (++completed === JOBS) onDone?.();
            });
            await worker.waitUntilReady();
          },
          run: async () => {
            const done = new Promise<void>((resolve) => (onDone = resolve));
            void worker!.run();
            await done;
            if (failure) throw failure;
            return JOBS;
          },
          teardown: async () => {
            onDone = null;
            await worker!.close();
            worker = null;
          },
        },
        {
          name: 'mocra RedisChainState (claim+commit pairs)',
          run: () => pairs(redisState, REDIS_PAIRS),
          teardown: () => unlinkMatching(admin, `${prefix}:*`),
        },
      ],
    );
    printCase(redisCase);
    cases.push(redisCase);

    const bull = redisCase.rows[0]!.median;
    const mocraRedis = redisCase.rows[1]!.median;
    const ratio = mocraRedis / bull;
    console.log(`\nRedis pairs/s ÷ BullMQ jobs/s = ${ratio.toFixed(2)} (target >= 1)`);
    Object.assign(notes, {
      'Redis pairs/s ÷ BullMQ jobs/s': Number(ratio.toFixed(2)),
      setup: `concurrency ${CONCURRENCY}; ${rounds} rounds after ${warmup} warm-up; per round ${LOCAL_PAIRS} local pairs, ${REDIS_PAIRS} Redis pairs, ${JOBS} BullMQ jobs`,
      workload:
        'a pair = ptm_claim then ptm_commit_success with 1 successor and 1 item (2 EVALSHA calls; RedisBackend shares socket writes among the calls of one tick); BullMQ: jobs added with addBulk before the timed region (removeOnComplete), timed from Worker.run() to the last completed event',
    });
    console.log(`\nwrote ${writeResults('chain-state', cases, notes)}`);
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await unlinkMatching(admin, `${prefix}*`).catch(() => undefined);
    await backend.close();
    admin.disconnect();
    await server?.stop();
  }
}

await main();
