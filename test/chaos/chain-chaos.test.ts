/**
 * Chaos test of the distributed chain engine: 4 worker processes on one private redis-server
 * (AOF on, `appendfsync always`) crawl a synthetic tree of 10,101 nodes (fixtures/chaos-modules.ts)
 * while the queues duplicate ~20 % of the pushes and delay some (reordering), two workers are
 * killed with SIGKILL while they hold claims (and restarted), the script cache is flushed, and
 * redis-server itself is killed and restarted on the same port and data directory.
 *
 * How the accounting is sound:
 * - Items lost: the sink is `HSETNX items <itemId>`; every expected itemId (one per leaf, its
 *   node key + request + index, stable across runs of the node) must be there.
 * - Committed twice: a commit fires ModuleStepAdvanced once in the worker that committed it; the
 *   fixture records it per node (`advances`). A worker killed between its commit and the record
 *   leaves a node with 0, so the assertion is "≤ 1 per node", and completeness comes from the
 *   state itself: every node record of `fan` must be `done` (a node is `done` only through
 *   `ptm_commit_success`), and every item present. A second commit of a node would show as 2.
 * - Errors emitted twice: ErrorTaskProduced per node and attempt (`errors`), ≤ 1.
 * - Raw `onItem` calls (`deliveries`): more than one per item is allowed (at-least-once) only
 *   around a fault (a relay killed between onItem and its ack, or an ack lost to the Redis
 *   outage); each such call is listed with its time and checked against the fault windows.
 * - Every message accounted for: at the end the streams are empty, no consumer group has a
 *   pending entry, every dead letter carries a reason, and the task's outbox, outbox leases and
 *   retry set are empty.
 * Every record is written by an idempotent script (see the fixture), so a retried write after
 * a lost reply never counts one call twice.
 *
 * Not vacuous: the test asserts that each killed worker held deliveries and node claims when it
 * died (and that those nodes were finished by others), that the script cache really was empty
 * after SCRIPT FLUSH and refilled, that redis-server really restarted (new run_id) and work
 * went on after it, that duplicates were really pushed and met (DUPLICATE_DONE claims), that
 * parses failed and were retried, and that the doomed module was terminated by its threshold.
 */
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChainKeyBuilder,
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  type ChainEngineStats,
} from '../../src/index.js';
import {
  ACCOUNT,
  DOOMED_BRANCHES,
  FAN_A,
  FAN_B,
  PLATFORM,
  RUN_ID,
  TASK_ID,
  doomedFails,
  doomedModule,
  fakeDownloader,
  fanModule,
  fanNodes,
  leafFailures,
  midFailures,
} from './fixtures/chaos-modules.js';
import { redisServerBinary, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const PREFIX = 'chaos:';
const R = `${PREFIX}rec:`;
const FIXTURE = join(import.meta.dirname, 'fixtures', 'chaos-worker.ts');
const keys = new ChainKeyBuilder();
const TASK_KEYS = `${PREFIX}${keys.taskPrefix(TASK_ID)}`;
const STREAMS = [
  ...['task', 'parser', 'error'].map((q) => `${PREFIX}${keys.queue(q)}`),
  `${PREFIX}${keys.items()}`,
];
const DEAD = ['task', 'parser', 'error'].map((q) => `${PREFIX}${keys.queueDeadLetters(q)}`);
const GROUP = 'mocra-chain';
const ci = process.env.CI === 'true' || process.env.CI === '1';
const BUDGET_MS = 100_000; // the whole run, faults included, must fit well inside vitest's 120 s

const all: WorkerProcess[] = [];
function startWorker(name: string, url: string, seed: number): WorkerProcess {
  const worker = startWorkerProcess(FIXTURE, name, {
    REDIS_URL: url,
    KEY_PREFIX: PREFIX,
    CHAOS_SEED: String(seed),
    // half the workers read the parser stream as it is, so their commits hand off by
    // themselves (successors and items straight to the streams); the others go through the
    // chaos decorator, so theirs go through the outbox and the relay
    CHAOS_HAND_OFF: /[13]$/.test(name) ? '1' : '0',
  });
  all.push(worker);
  return worker;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, condition: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    let ok = false;
    try {
      ok = await condition();
    } catch {
      ok = false; // e.g. while redis-server restarts
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function scanAll(client: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 2000);
    cursor = next;
    out.push(...found);
  } while (cursor !== '0');
  return out;
}

/** HMGET of many keys' fields, pipelined in chunks. */
async function hmgetMany(client: Redis, list: string[], fields: string[]): Promise<string[][]> {
  const out: string[][] = [];
  for (let i = 0; i < list.length; i += 2000) {
    const pipe = client.pipeline();
    for (const k of list.slice(i, i + 2000)) pipe.hmget(k, ...fields);
    const replies = (await pipe.exec()) ?? [];
    for (const [error, value] of replies) {
      if (error) throw error;
      out.push(value as string[]);
    }
  }
  return out;
}

function nodeAddress(moduleId: string, stepIdx: number, prefixRequest: string) {
  return { runId: RUN_ID, account: ACCOUNT, platform: PLATFORM, moduleId, stepIdx, prefixRequest };
}

describe.skipIf(!redisServerBinary() && !ci)('chain engine under chaos (4 workers)', () => {
  let redis: RedisServer;
  let admin: Redis;

  beforeAll(async () => {
    redis = await startRedisServer({ appendonly: true });
    admin = new Redis(redis.url, {
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(50 * times, 300),
    });
    admin.on('error', () => {});
  });

  afterAll(async () => {
    for (const w of all)
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(all.map((w) => Promise.race([w.exited, sleep(3_000)])));
    admin?.disconnect();
    await redis?.stop();
  });

  it('loses nothing, commits and errs at most once per node, and accounts for every message', async () => {
    const t0 = Date.now();
    const at = (): number => Date.now() - t0;
    const events: string[] = [];
    const note = (what: string): void =>
      void events.push(`${String(at()).padStart(6)} ms  ${what}`);
    /** [start, end] of each fault, in ms since t0: duplicates of onItem are allowed there. */
    const faultWindows: { what: string; from: number; to: number }[] = [];

    // the expected items and nodes of `fan`
    const fan = fanNodes();
    const fanKeys = fan.map(
      ([step, p]) => `${PREFIX}${keys.ptm(TASK_ID, nodeAddress('fan', step, p))}`,
    );
    const expectedItems = fan
      .filter(([step]) => step === 2)
      .map(([step, p]) => `${keys.ptmKey(nodeAddress('fan', step, p))}/0/0`);
    expect(fan).toHaveLength(1 + FAN_A + FAN_A * FAN_B);
    expect(expectedItems).toHaveLength(FAN_A * FAN_B);

    const live = new Map<string, WorkerProcess>();
    for (let i = 1; i <= 4; i++) live.set(`w${i}`, startWorker(`w${i}`, redis.url, 1000 + i));
    await until(
      'every worker ready',
      async () => [...live.values()].every((w) => w.stdout.includes('ready')),
      30_000,
    ).catch((error: unknown) => {
      throw new Error(
        `${(error as Error).message}\n${all.map((w) => `${w.name}: ${w.stderr}`).join('\n')}`,
      );
    });
    note('4 workers ready');

    // submit through the library (an engine that is never started only pushes the TaskModel)
    {
      const store = new RedisBackend({ redis: redis.url, keyPrefix: PREFIX });
      const client = new Redis(redis.url);
      const queues = createRedisStreamQueues({ client, keyPrefix: PREFIX, consumer: 'submitter' });
      const submitter = createChainEngine({
        modules: [fanModule(async () => 1), doomedModule()],
        downloader: fakeDownloader(),
        store,
        queues,
      });
      await store.connect();
      await submitter.submit({
        taskId: TASK_ID,
        runId: RUN_ID,
        account: ACCOUNT,
        platform: PLATFORM,
        modules: ['fan', 'doomed'],
      });
      await submitter.stop();
      await Promise.all([
        queues.task.shutdown(),
        queues.parser.shutdown(),
        queues.error.shutdown(),
      ]);
      await store.close();
      await client.quit();
    }
    const tSubmit = at();
    note('task submitted');

    const itemCount = async (): Promise<number> => admin.hlen(`${R}items`);
    // the clock of the faults: nodes committed (items only come with the leaves, at the end)
    const progress = async (fraction: number, what: string): Promise<void> =>
      until(
        `${what} (${fraction * 100} % of the nodes committed)`,
        async () => (await admin.hlen(`${R}advances`)) >= fraction * fan.length,
        60_000,
      );

    // ── fault 1: SCRIPT FLUSH ─────────────────────────────────────────────────────────────
    await progress(0.1, 'script flush');
    const cachedScripts = async (): Promise<number> => {
      const info = await admin.info('memory');
      return Number(/number_of_cached_scripts:(\d+)/.exec(info)?.[1] ?? -1);
    };
    const scriptsBefore = await cachedScripts();
    // flush and look in one MULTI: the workers reload their scripts within milliseconds
    const flushed = (await admin.multi().script('FLUSH').info('memory').exec()) ?? [];
    const scriptsJustAfter = Number(
      /number_of_cached_scripts:(\d+)/.exec(String(flushed[1]?.[1]))?.[1] ?? -1,
    );
    const itemsAtFlush = await itemCount();
    note(
      `SCRIPT FLUSH (cached scripts ${scriptsBefore} → ${scriptsJustAfter}) at ${itemsAtFlush} items`,
    );
    faultWindows.push({ what: 'script flush', from: at() - 500, to: at() + 3_000 });

    // ── faults 2 and 4: SIGKILL a worker that holds claims, restart it under a new name ────
    const kills: { victim: string; pending: number; orphaned: string[]; itemsAt: number }[] = [];
    /**
     * Kills `victim` when it holds deliveries; the state scan after its death tells whether it
     * held node claims too. A kill that caught none is repeated on its replacement (bounded).
     */
    const killHolding = async (victim: string, seed: number): Promise<void> => {
      for (let round = 0; round < 3; round++) {
        const replacement = `${victim}-${round + 1}`;
        await killHolder(victim, replacement, seed + round);
        if (kills.at(-1)!.orphaned.length > 0) return;
        victim = replacement;
      }
    };
    const killHolder = async (victim: string, replacement: string, seed: number): Promise<void> => {
      const worker = live.get(victim)!;
      let pending = 0;
      // wait (bounded) for a moment when it holds deliveries of the parser stream
      await until(
        `${victim} holding deliveries`,
        async () => {
          const rows = (await admin.xpending(
            STREAMS[1]!,
            GROUP,
            '-',
            '+',
            100,
            victim,
          )) as unknown[];
          pending = rows.length;
          return pending >= 3;
        },
        15_000,
      );
      worker.child.kill('SIGKILL');
      const from = at();
      await worker.exited;
      live.delete(victim);
      // the node records it held a claim on when it died: processing, owned by `<victim>/…`
      const ptmKeys = await scanAll(admin, `${TASK_KEYS}ptm:*`);
      const states = await hmgetMany(admin, ptmKeys, ['status', 'owner']);
      const orphaned = ptmKeys.filter(
        (_, i) => states[i]![0] === 'processing' && states[i]![1]!.startsWith(`${victim}/`),
      );
      const itemsAt = await itemCount();
      kills.push({ victim, pending, orphaned, itemsAt });
      note(
        `SIGKILL ${victim}: ${pending} deliveries pending, ${orphaned.length} node claims held, ${itemsAt} items`,
      );
      await sleep(300);
      const fresh = startWorker(replacement, redis.url, seed);
      live.set(replacement, fresh);
      await until(`${replacement} ready`, async () => fresh.stdout.includes('ready'), 20_000);
      note(`${replacement} started`);
      faultWindows.push({ what: `kill ${victim}`, from: from - 500, to: from + 12_000 });
    };

    await progress(0.3, 'first kill');
    await killHolding('w2', 2002);

    // ── fault 3: redis-server killed (SIGKILL) and restarted on the same port and AOF ────────
    await progress(0.5, 'redis restart');
    const runIdBefore = /run_id:(\w+)/.exec(await admin.info('server'))?.[1];
    const itemsBeforeRestart = await itemCount();
    const restartFrom = at();
    await redis.kill();
    note(`redis-server SIGKILLed at ${itemsBeforeRestart} items`);
    await sleep(700);
    await redis.restart();
    const restartTo = at();
    await until('admin reconnected', async () => (await admin.ping()) === 'PONG', 10_000);
    const runIdAfter = /run_id:(\w+)/.exec(await admin.info('server'))?.[1];
    const itemsAfterRestart = await itemCount();
    note(
      `redis-server up again after ${restartTo - restartFrom} ms (${itemsAfterRestart} items kept)`,
    );
    faultWindows.push({ what: 'redis restart', from: restartFrom - 500, to: restartTo + 12_000 });

    await progress(0.7, 'second kill');
    await killHolding('w3', 3003);

    // ── the end: every expected item, the doomed module terminated, nothing left anywhere ──
    const terminateDoomed = PREFIX + keys.terminateModule(TASK_ID, RUN_ID, 'doomed');
    const leftovers = async (): Promise<Record<string, number>> => {
      const [outbox, leases, retry, ...streamLengths] = await Promise.all([
        admin.llen(`${TASK_KEYS}outbox`),
        admin.zcard(`${TASK_KEYS}outbox:leases`),
        admin.zcard(`${TASK_KEYS}retry`),
        ...STREAMS.map((s) => admin.xlen(s)),
      ]);
      return {
        outbox,
        outboxLeases: leases,
        retrySet: retry,
        streamTask: streamLengths[0]!,
        streamParser: streamLengths[1]!,
        streamError: streamLengths[2]!,
        streamItems: streamLengths[3]!,
      };
    };
    const missingItems = async (): Promise<string[]> => {
      const missing: string[] = [];
      for (let i = 0; i < expectedItems.length; i += 2000) {
        const chunk = expectedItems.slice(i, i + 2000);
        const values = await admin.hmget(`${R}items`, ...chunk);
        chunk.forEach((id, j) => values[j] === null && missing.push(id));
      }
      return missing;
    };
    let quiet = 0;
    await until(
      'every item, the doomed module terminated and empty streams, outbox and retries',
      async () => {
        const done =
          (await missingItems()).length === 0 &&
          (await admin.exists(terminateDoomed)) === 1 &&
          Object.values(await leftovers()).every((n) => n === 0);
        quiet = done ? quiet + 1 : 0;
        return quiet >= 3; // three looks in a row, 100+ ms apart: late duplicates have landed
      },
      Math.max(5_000, BUDGET_MS - at()),
    ).catch(async (error: unknown) => {
      throw new Error(
        `${(error as Error).message}: missing ${(await missingItems()).length} items, ` +
          `leftovers ${JSON.stringify(await leftovers())}, doomed terminated ${await admin.exists(terminateDoomed)}\n` +
          `workers' last warnings:\n${all.map((w) => w.stderr.slice(-1500)).join('\n')}\n` +
          `items stream: groups ${JSON.stringify(await admin.xinfo('GROUPS', STREAMS[3]!))} pending ${JSON.stringify(await admin.xpending(STREAMS[3]!, GROUP))} consumers ${JSON.stringify(await admin.xinfo('CONSUMERS', STREAMS[3]!, GROUP))}\n` +
          events.join('\n'),
      );
    });
    const tDone = at();
    note('all items in, nothing left in flight');

    // graceful stop of the live workers
    for (const w of live.values()) w.child.kill('SIGTERM');
    const exits = await Promise.all(
      [...live.values()].map((w) =>
        Promise.race([w.exited, sleep(15_000).then(() => ({ code: -1, signal: null }))]),
      ),
    );
    expect(
      exits,
      [...live.values()].map((w) => `${w.name}: ${w.stderr.slice(-2000)}`).join('\n'),
    ).toEqual([...live.values()].map(() => ({ code: 0, signal: null })));
    const stats = [...live.values()].map((w) => {
      const line = w.stdout.split('\n').find((l) => l.startsWith('{"final"'));
      return (JSON.parse(line!) as { final: { stats: ChainEngineStats } }).final.stats;
    });
    note('survivors stopped (SIGTERM, exit 0)');

    // ── accounting ────────────────────────────────────────────────────────────────────────
    const fanStates = await hmgetMany(admin, fanKeys, ['status']);
    const fanNotDone = fanKeys.filter((_, i) => fanStates[i]![0] !== 'done');
    const missing = await missingItems();
    const advances = await admin.hgetall(`${R}advances`);
    const errors = await admin.hgetall(`${R}errors`);
    const deliveries = await admin.hgetall(`${R}deliveries`);
    const dupes = await admin.lrange(`${R}dupes`, 0, -1);
    const chaos = await admin.hgetall(`${R}chaos`);
    const attempts = await admin.hgetall(`${R}attempts`);
    const doubleAdvances = Object.entries(advances).filter(([, n]) => Number(n) > 1);
    const doubleErrors = Object.entries(errors).filter(([, n]) => Number(n) > 1);
    const fanAdvances = Object.keys(advances).filter((k) => k.startsWith('fan|')).length;
    const rawDuplicates = Object.values(deliveries).reduce((n, d) => n + Number(d) - 1, 0);
    const dupeTimes = dupes.map((line) => {
      const [itemId, worker, ms] = line.split(' ');
      return { itemId: itemId!, worker: worker!, at: Number(ms) - t0 };
    });
    if (process.env.CHAOS_DEBUG)
      for (const w of all)
        for (const line of w.stderr.split('\n').filter((l) => /relay|items/.test(l)))
          console.log('DBG', w.name, line.slice(0, 300));
    const dupesOutsideFaults = dupeTimes.filter(
      (d) => !faultWindows.some((w) => d.at >= w.from && d.at <= w.to),
    );
    if (process.env.CHAOS_DEBUG) {
      console.log('DBG windows', JSON.stringify(faultWindows));
      for (const d of dupesOutsideFaults) console.log('DBG outside', d.at, d.worker, d.itemId);
    }
    const pendingAfter = await Promise.all(
      STREAMS.map(async (s) => Number(((await admin.xpending(s, GROUP)) as [number])[0])),
    );
    const deadLetters = (
      await Promise.all(
        DEAD.map(async (d) => (await admin.xrange(d, '-', '+')).map(([, f]) => ({ stream: d, f }))),
      )
    ).flat();
    const deadReasons = deadLetters.map(({ stream, f }) => {
      const i = f.indexOf('reason');
      return { stream, reason: i >= 0 ? f[i + 1]! : '' };
    });
    const end = await leftovers();
    const reorder = await scanAll(admin, `${TASK_KEYS}reorder:*`);
    const survivorsSum = (pick: (s: ChainEngineStats) => number): number =>
      stats.reduce((n, s) => n + pick(s), 0);
    const failingLeaves = [...Array(FAN_A * FAN_B).keys()].filter((id) => leafFailures(id) > 0);
    const expectedFailures =
      failingLeaves.reduce((n, id) => n + leafFailures(id), 0) +
      [...Array(FAN_A).keys()].reduce((n, a) => n + midFailures(a), 0);
    const etmsRecorded = Object.keys(errors).filter((k) => k.startsWith('fan|')).length;
    const doomedAdvances = Object.keys(advances).filter((k) => k.startsWith('doomed|'));
    const duplicatesInjected = Object.entries(chaos)
      .filter(([k]) => k.startsWith('duplicated:'))
      .reduce((n, [, v]) => n + Number(v), 0);

    const table: Record<string, string | number> = {
      'nodes (fan)': fan.length,
      'nodes done in state (fan)': fan.length - fanNotDone.length,
      'commits recorded (fan, ≤ nodes: a killed worker may commit and not record)': fanAdvances,
      'double advances (node committed twice)': doubleAdvances.length,
      'items expected': expectedItems.length,
      'items delivered (HSETNX)': expectedItems.length - missing.length,
      'items lost': missing.length,
      'items produced twice (committed)': doubleAdvances.filter(([k]) => k.startsWith('fan|2|'))
        .length,
      'raw duplicate onItem calls': rawDuplicates,
      '  … of them outside a fault window': dupesOutsideFaults.length,
      'parse failures planned (fan)': expectedFailures,
      'ErrorTaskProduced recorded (fan, node@attempt)': etmsRecorded,
      'double error emissions': doubleErrors.length,
      'retries relayed (ParserTaskProduced retry)': Number(chaos.retries_relayed ?? 0),
      'doomed: branches committed / total': `${doomedAdvances.filter((k) => k.startsWith('doomed|1|')).length} / ${DOOMED_BRANCHES}`,
      'duplicate pushes injected': duplicatesInjected,
      'delayed pushes injected': Number(chaos.delayed ?? 0),
      'claims DUPLICATE_DONE (survivors)': survivorsSum((s) => s.claims.DUPLICATE_DONE ?? 0),
      'claims LOCKED_BY_OTHER (survivors)': survivorsSum((s) => s.claims.LOCKED_BY_OTHER ?? 0),
      'commits FENCING_REJECT+CAS_CONFLICT (survivors)': survivorsSum(
        (s) => (s.commits.FENCING_REJECT ?? 0) + (s.commits.CAS_CONFLICT ?? 0),
      ),
      'dead letters (each with a reason)': deadLetters.length,
      'pending entries after stop (task/parser/error/items)': pendingAfter.join('/'),
      'outbox / leases / retry set at the end': `${end.outbox} / ${end.outboxLeases} / ${end.retrySet}`,
      'reorder buffers left': reorder.length,
      'kills: deliveries pending / claims held': kills
        .map((k) => `${k.victim} ${k.pending}/${k.orphaned.length}`)
        .join(', '),
      'script cache before / after flush': `${scriptsBefore} / ${scriptsJustAfter}`,
      'redis restart: items before / after / outage ms': `${itemsBeforeRestart} / ${itemsAfterRestart} / ${restartTo - restartFrom}`,
      'time to submit / to done (ms)': `${tSubmit} / ${tDone}`,
    };
    console.log(`chain chaos: timeline\n${events.join('\n')}`);
    console.table(table);
    if (dupeTimes.length > 0)
      console.log(
        `raw duplicate onItem calls (ms since start, worker):\n${dupeTimes
          .slice(0, 30)
          .map((d) => `  ${d.at} ${d.worker} ${d.itemId}`)
          .join('\n')}${dupeTimes.length > 30 ? `\n  … ${dupeTimes.length - 30} more` : ''}`,
      );
    if (deadReasons.length > 0) console.log('dead letters:', deadReasons);

    // ── the guarantees ─────────────────────────────────────────────────────────────────────
    expect(missing, 'items lost').toEqual([]);
    expect(fanNotDone, 'fan nodes not done').toEqual([]);
    expect(doubleAdvances, 'nodes committed twice').toEqual([]);
    expect(doubleErrors, 'failures emitted twice').toEqual([]);
    expect(dupesOutsideFaults, 'raw duplicate onItem calls outside a fault window').toEqual([]);
    for (const [id, n] of Object.entries(deliveries))
      expect(Number(n), id).toBeGreaterThanOrEqual(1);
    expect(Object.keys(deliveries).length).toBe(Number(await admin.hlen(`${R}items`)));
    // every message accounted for
    expect(end).toEqual({
      outbox: 0,
      outboxLeases: 0,
      retrySet: 0,
      streamTask: 0,
      streamParser: 0,
      streamError: 0,
      streamItems: 0,
    });
    expect(pendingAfter).toEqual([0, 0, 0, 0]);
    for (const d of deadReasons) expect(d.reason, JSON.stringify(d)).not.toBe('');
    expect(deadReasons.filter((d) => !/doomed|delivered \d+ times/.test(d.reason))).toEqual([]);
    // thresholds: doomed terminated, fan and the task not
    expect(await admin.exists(terminateDoomed)).toBe(1);
    expect(await admin.exists(PREFIX + keys.terminateModule(TASK_ID, RUN_ID, 'fan'))).toBe(0);
    expect(await admin.exists(PREFIX + keys.terminateTask(TASK_ID, RUN_ID))).toBe(0);
    for (let b = 0; b < DOOMED_BRANCHES; b++)
      if (doomedFails(b))
        expect(advances[`doomed|1|GET fake://doomed/root#${b}`], `doomed ${b}`).toBeUndefined();

    // ── the faults really happened ─────────────────────────────────────────────────────────
    expect(kills.filter((k) => k.orphaned.length > 0).length, 'kills that caught claims').toBe(2);
    for (const k of kills) {
      expect(k.pending, `${k.victim} held deliveries`).toBeGreaterThan(0);
      // … which other workers took over and finished (each node ends done, or failed then retried)
      const after = await hmgetMany(admin, k.orphaned, ['status', 'owner']);
      for (const [i, [status, owner]] of after.entries()) {
        expect(status, k.orphaned[i]).toBe('done');
        expect(owner!.startsWith(`${k.victim}/`), `${k.orphaned[i]} taken over`).toBe(false);
      }
    }
    expect(scriptsBefore).toBeGreaterThan(0);
    expect(scriptsJustAfter).toBe(0);
    expect(await cachedScripts(), 'scripts reloaded after the flush').toBeGreaterThan(0);
    expect(runIdAfter).toBeDefined();
    expect(runIdAfter, 'redis-server restarted').not.toBe(runIdBefore);
    expect(itemsAfterRestart, 'AOF kept what was acknowledged').toBeGreaterThanOrEqual(
      itemsBeforeRestart,
    );
    expect(expectedItems.length).toBeGreaterThan(itemsAfterRestart); // work went on after it
    expect(duplicatesInjected, 'duplicate pushes').toBeGreaterThan(100);
    expect(Number(chaos.delayed ?? 0), 'delayed pushes').toBeGreaterThan(100);
    expect(
      survivorsSum((s) => s.claims.DUPLICATE_DONE ?? 0),
      'duplicates met',
    ).toBeGreaterThan(0);
    expect(etmsRecorded, 'failures emitted').toBeGreaterThan(expectedFailures / 2);
    expect(Number(chaos.retries_relayed ?? 0), 'retries relayed').toBeGreaterThan(0);
    for (const id of failingLeaves)
      expect(Number(attempts[`leaf:${id}`] ?? 0), `leaf ${id} parse attempts`).toBeGreaterThan(
        leafFailures(id),
      );
    expect(at()).toBeLessThan(BUDGET_MS + 15_000);
  }, 115_000);
});
