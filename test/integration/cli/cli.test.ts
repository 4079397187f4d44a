/**
 * The `mocra` command (src/cli.ts, run as its own process) against a real Redis holding a run
 * in progress — nodes leased, a retry waiting, a dead letter of the run — and a malformed
 * message's dead letter: `--json` output of `inspect`, `inspect run`, `dead-letters list` and
 * `replay`; tables by default; clear errors for an unknown run and an unreachable Redis.
 */
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
import { describeRedis, redisUrl } from '../../helpers/redis.js';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { mocra as run } from './run-cli.js';

const mocra = (...args: string[]) => run(args);

describeRedis('mocra command line', () => {
  const url = redisUrl()!;
  const prefix = `mocra-cli-${randomBytes(4).toString('hex')}:`;
  let store: RedisBackend;
  let client: Redis;
  let queues: RedisStreamQueues;
  let engine: ChainEngine;
  let runId: string;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));

  beforeAll(async () => {
    store = new RedisBackend({ redis: url, keyPrefix: prefix });
    await store.connect();
    client = new Redis(url);
    queues = createRedisStreamQueues({ client, keyPrefix: prefix, consumer: 'w1', blockMs: 50 });
    const module = defineModule({
      id: 'slow',
      steps: [
        {
          name: 'seed',
          generate: () => [{ url: 'mem://seed' }],
          parse: () => ({ next: [0, 1, 2] }),
        },
        {
          name: 'page',
          generate: (ctx) => [{ url: `mem://page/${String(ctx.input)}` }],
          parse: (_r, ctx) => {
            if (ctx.input === 0) throw new Error('page 0 broke');
            return { items: [{ page: ctx.input as number }] };
          },
        },
      ],
    });
    engine = createChainEngine({
      modules: [module],
      store,
      queues,
      workerId: 'w1',
      rateLimit: { global: false, perKey: false },
      // the failed node's retry waits in the retry set for the whole test
      nodeRetry: { maxRetries: 1, initialDelayMs: 600_000, maxDelayMs: 600_000, jitter: 0 },
      downloader: async (request) => {
        if (request.url !== 'mem://seed' && request.url !== 'mem://page/0') await released;
        return { status: 200, headers: {}, body: '' };
      },
    });
    await engine.start();
    ({ runId } = await engine.submit({
      taskId: 'cli-1',
      account: 'acme',
      platform: 'web',
      modules: ['slow'],
    }));
    // once the task's record is stored (its run dispatched: the root counted), a message of the
    // run for a module no worker has: dead-lettered with the run's id (before it, the message
    // would meet no task record)
    const dispatched = Date.now() + 20_000;
    for (;;) {
      const { queued, running, done } = (await engine.runStatus(runId)).nodes;
      if (queued + running + done > 0) break;
      if (Date.now() > dispatched) throw new Error('the run was not dispatched');
      await new Promise((r) => setTimeout(r, 20));
    }
    await engine.publish({
      kind: 'parser_task',
      body: {
        taskId: 'cli-1',
        runId,
        account: 'acme',
        platform: 'web',
        moduleId: 'ghost',
        stepIdx: 0,
        prefixRequest: '',
      },
    });
    await engine.publish('{not json');
    // wait: two pages leased, the retry scheduled, two dead letters
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = await engine.runStatus(runId);
      const dead =
        (await client.xlen(`${prefix}chain:queue:parser:dead`)) +
        (await client.xlen(`${prefix}chain:queue:task:dead`));
      if (s.nodes.running === 2 && s.nodes.queued === 1 && dead >= 2) break;
      if (Date.now() > deadline) throw new Error(`not ready: ${JSON.stringify(s)} dead=${dead}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(async () => {
    release();
    await engine?.close();
    await Promise.all([queues.task, queues.parser, queues.error].map((q) => q.shutdown()));
    await store?.close();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
    client.disconnect();
  });

  const base = () => ['--redis', url, '--prefix', prefix];

  it('inspect --json lists the run in progress with its progress per module', async () => {
    const r = await mocra('inspect', ...base(), '--json');
    expect(r.code, r.stderr).toBe(0);
    const { runs } = JSON.parse(r.stdout) as { runs: RunStatus[] };
    const run = runs.find((x) => x.runId === runId)!;
    expect(run).toMatchObject({
      taskId: 'cli-1',
      state: 'running',
      nodes: { queued: 1, running: 2, done: 1, failed: 0 },
      errors: 1,
    });
    expect(run.modules['slow']).toMatchObject({ state: 'running', nodes: run.nodes });
  });

  it('inspect run --json adds the retry queue, the leases held (by whom, until when) and the dead letters', async () => {
    const before = Date.now();
    const r = await mocra('inspect', 'run', runId, ...base(), '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      run: RunStatus;
      retries: { moduleId: string; stepIdx: number; attempt: number; dueAt: number }[];
      leases: { owner: string; status: string; until: number }[];
      deadLetters: { queue: string; runId: string; moduleId: string; reason: string }[];
    };
    expect(out.run.runId).toBe(runId);
    expect(out.retries).toEqual([
      expect.objectContaining({ moduleId: 'slow', stepIdx: 1, attempt: 1 }),
    ]);
    expect(out.retries[0]!.dueAt).toBeGreaterThan(before + 60_000);
    expect(out.leases).toHaveLength(2);
    for (const lease of out.leases) {
      expect(lease.owner.startsWith('w1/')).toBe(true);
      expect(lease.status).toBe('processing');
      expect(lease.until).toBeGreaterThan(before);
    }
    expect(out.deadLetters).toEqual([
      expect.objectContaining({ queue: 'parser', runId, moduleId: 'ghost' }),
    ]);
    expect(out.deadLetters[0]!.reason).toMatch(/not registered/);
  });

  it('tables by default', async () => {
    const r = await mocra('inspect', ...base());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^RUN \/ MODULE\s+TASK\s+STATE\s+QUEUED\s+RUNNING/);
    expect(r.stdout).toContain(runId);
    const d = await mocra('inspect', 'run', runId, ...base());
    expect(d.stdout).toMatch(/retry queue \(1\)/);
    expect(d.stdout).toMatch(/leases held \(2\)/);
    expect(d.stdout).toMatch(/dead letters \(1\)/);
  });

  it('dead-letters list and replay: a replayed letter is published again and leaves the list', async () => {
    const list = await mocra('dead-letters', 'list', ...base(), '--json');
    expect(list.code, list.stderr).toBe(0);
    const { deadLetters } = JSON.parse(list.stdout) as {
      deadLetters: { queue: string; id: string; runId?: string; kind?: string }[];
    };
    const ghost = deadLetters.find((d) => d.runId === runId)!;
    expect(ghost).toMatchObject({ queue: 'parser', kind: 'parser_task' });
    expect(deadLetters.some((d) => d.queue === 'task' && d.kind === undefined)).toBe(true);
    const replay = await mocra('dead-letters', 'replay', ...base(), '--id', ghost.id, '--json');
    expect(replay.code, replay.stderr).toBe(0);
    expect((JSON.parse(replay.stdout) as { replayed: { id: string }[] }).replayed).toEqual([
      expect.objectContaining({ id: ghost.id, queue: 'parser' }),
    ]);
    // published again: a worker took it and (the module still missing) set it aside anew
    const deadline = Date.now() + 20_000;
    let left: { id: string; runId?: string }[] = [];
    do {
      const after = await mocra('dead-letters', 'list', ...base(), '--queue', 'parser', '--json');
      left = (JSON.parse(after.stdout) as { deadLetters: typeof left }).deadLetters;
    } while (!left.some((d) => d.runId === runId) && Date.now() < deadline);
    expect(left.some((d) => d.id === ghost.id)).toBe(false);
    expect(left.filter((d) => d.runId === runId)).toHaveLength(1);
    const again = await mocra('dead-letters', 'replay', ...base(), '--id', ghost.id);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no dead letter with id/);
  });

  it('an unknown run, an unreachable Redis and a bad command line are clear errors', async () => {
    const unknown = await mocra('inspect', 'run', 'no-such-run', ...base(), '--json');
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/run "no-such-run" not found .*\[RUN_NOT_FOUND\]/);
    const down = await mocra('inspect', '--redis', 'redis://user:secret@127.0.0.1:1', '--json');
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:1: .*\[BACKEND_UNAVAILABLE\]/,
    );
    expect(down.stderr).not.toContain('secret');
    const usage = await mocra('inspect', '--bogus');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/unknown option --bogus/);
  });
});
