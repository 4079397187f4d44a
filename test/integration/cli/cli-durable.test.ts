/**
 * The `mocra` command (src/cli.ts, run as its own process) on a durable data directory (real
 * LMDB in a temp directory) while an engine — the workers, in this test's process — holds it
 * with a run in progress: nodes leased, a retry waiting, a dead letter of the run and a
 * malformed message's dead letter. `--json` output of `inspect`, `inspect run`, `dead-letters
 * list`; tables; `replay` refused while a live process holds the directory (naming its pid),
 * then replaying to the durable queue once it is free; clear one-line errors for a missing
 * directory, a directory that is no store, lmdb missing, and the command line.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DurableQueue } from '../../../src/chain/durable-queue.js';
import { main } from '../../../src/cli/main.js';
import {
  DurableBackend,
  createChainEngine,
  defineModule,
  type ChainEngine,
  type RunStatus,
} from '../../../src/index.js';
import { removeTempDataDirs, tempDataDir } from '../../helpers/durable.js';
import { startWorkerProcess } from '../../helpers/worker-process.js';
import { mocra as run } from './run-cli.js';

const mocra = (...args: string[]) => run(args);

interface Letter {
  queue: string;
  id: string;
  kind?: string;
  runId?: string;
  moduleId?: string;
  reason: string;
  deliveries: number;
}

/** A stack trace line (`    at fn (file:1:2)`): an error must be one line, not a crash. */
const STACK = /^\s+at /m;

describe('mocra command line on a durable data dir', () => {
  const dir = tempDataDir('cli');
  const keyPrefix = 'app';
  let store: DurableBackend;
  let engine: ChainEngine;
  let runId: string;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const base = () => ['--data-dir', dir, '--prefix', keyPrefix];

  const deadLetters = (name: string) =>
    new DurableQueue<string>({ store, name, keyPrefix: 'chain' }).deadLetters();

  beforeAll(async () => {
    store = await DurableBackend.open({ path: dir, keyPrefix });
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
    // a message of the run for a module no worker has: dead-lettered with the run's id
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
      const dead = deadLetters('parser').length + deadLetters('task').length;
      if (s.nodes.running === 2 && s.nodes.queued === 1 && dead >= 2) break;
      if (Date.now() > deadline) throw new Error(`not ready: ${JSON.stringify(s)} dead=${dead}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(async () => {
    release();
    await engine?.close();
    await store?.close();
    removeTempDataDirs();
  });

  it('inspect --json lists the run in progress while the workers hold the directory', async () => {
    expect(existsSync(join(dir, 'mocra.lock'))).toBe(true);
    const r = await mocra('inspect', ...base(), '--json');
    expect(r.code, r.stderr).toBe(0);
    const { runs } = JSON.parse(r.stdout) as { runs: RunStatus[] };
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      runId,
      taskId: 'cli-1',
      state: 'running',
      nodes: { queued: 1, running: 2, done: 1, failed: 0 },
      errors: 1,
    });
    expect(runs[0]!.modules['slow']).toMatchObject({ state: 'running', nodes: runs[0]!.nodes });
  });

  it('inspect run --json adds the retry queue, the leases held and the run’s dead letters', async () => {
    const before = Date.now();
    const r = await mocra('inspect', 'run', runId, ...base(), '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      run: RunStatus;
      retries: { moduleId: string; stepIdx: number; attempt: number; dueAt: number }[];
      leases: { nodeId: string; owner: string; status: string; version: number; until: number }[];
      deadLetters: Letter[];
    };
    expect(out.run).toMatchObject({ runId, nodes: { running: 2 } });
    expect(out.retries).toEqual([
      expect.objectContaining({ moduleId: 'slow', stepIdx: 1, attempt: 1 }),
    ]);
    expect(out.retries[0]!.dueAt).toBeGreaterThan(before + 60_000);
    expect(out.leases).toHaveLength(2);
    expect(new Set(out.leases.map((l) => l.nodeId)).size).toBe(2);
    for (const lease of out.leases) {
      expect(lease.owner.startsWith('w1/')).toBe(true);
      expect(lease.status).toBe('processing');
      expect(lease.version).toBeGreaterThan(0);
      expect(lease.until).toBeGreaterThan(before);
    }
    expect(out.deadLetters).toEqual([
      expect.objectContaining({ queue: 'parser', runId, moduleId: 'ghost', kind: 'parser_task' }),
    ]);
    expect(out.deadLetters[0]!.reason).toMatch(/not registered/);
  });

  it('tables by default', async () => {
    const r = await mocra('inspect', ...base());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^RUN \/ MODULE\s+TASK\s+STATE\s+QUEUED\s+RUNNING/);
    expect(r.stdout).toMatch(new RegExp(`^${runId}\\s+cli-1\\s+running\\s+1\\s+2\\s+1\\s+0`, 'm'));
    const [d, l] = await Promise.all([
      mocra('inspect', 'run', runId, ...base()),
      mocra('dead-letters', 'list', ...base()),
    ]);
    expect(d.stdout).toMatch(/retry queue \(1\)/);
    expect(d.stdout).toMatch(/leases held \(2\)/);
    expect(d.stdout).toMatch(/dead letters \(1\)/);
    expect(l.stdout).toMatch(/^QUEUE\s+ID\s+KIND\s+RUN\s+DELIVERIES\s+REASON/);
    expect(l.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('dead-letters list --json: every queue, or the ones asked for', async () => {
    const all = await mocra('dead-letters', 'list', ...base(), '--json');
    expect(all.code, all.stderr).toBe(0);
    const letters = (JSON.parse(all.stdout) as { deadLetters: Letter[] }).deadLetters;
    expect(letters).toHaveLength(2);
    expect(letters).toContainEqual(
      expect.objectContaining({ queue: 'parser', kind: 'parser_task', runId, moduleId: 'ghost' }),
    );
    const malformed = letters.find((d) => d.queue === 'task')!;
    expect(malformed.kind).toBeUndefined();
    expect(malformed.deliveries).toBeGreaterThanOrEqual(1);
    const task = await mocra('dead-letters', 'list', ...base(), '--queue', 'task', '--json');
    expect((JSON.parse(task.stdout) as { deadLetters: Letter[] }).deadLetters).toEqual([malformed]);
  });

  it('replay while the workers hold the directory: refused, naming their pid; nothing changed', async () => {
    const r = await mocra('dead-letters', 'replay', ...base(), '--json');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `mocra: --data-dir ${JSON.stringify(dir)} is in use by a running process (pid ${process.pid}): ` +
        'stop the workers first, then replay (inspect and dead-letters list work while they run) [CONFIG_INVALID]\n',
    );
    expect(deadLetters('parser')).toHaveLength(1);
    expect(deadLetters('task')).toHaveLength(1);
  });

  it('an unknown run, a missing directory, a directory with no store and lmdb missing: one-line errors, nothing created', async () => {
    const missing = join(tempDataDir('cli-none'), 'nope');
    const empty = tempDataDir('cli-empty');
    // one process each, side by side
    const [unknown, missingRead, missingReplay, e, noLmdb] = await Promise.all([
      mocra('inspect', 'run', 'no-such-run', ...base()),
      mocra('inspect', '--data-dir', missing),
      mocra('dead-letters', 'replay', '--data-dir', missing),
      mocra('dead-letters', 'list', '--data-dir', empty),
      run(['inspect', ...base()], [join(import.meta.dirname, 'without-lmdb.ts')]),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^mocra: run "no-such-run" not found .*\[RUN_NOT_FOUND\]\n$/);

    for (const r of [missingRead, missingReplay]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `mocra: --data-dir ${JSON.stringify(missing)} does not exist [CONFIG_INVALID]\n`,
      );
    }
    expect(existsSync(missing)).toBe(false);

    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(
      /^mocra: --data-dir ".*" holds no mocra store \(no mocra\.mdb in it\)/,
    );
    expect(readdirSync(empty)).toEqual([]);

    expect(noLmdb.code).toBe(1);
    expect(noLmdb.stderr).toBe(
      'mocra: --data-dir needs the optional package lmdb, which is not installed here: install it with `npm install lmdb` [CONFIG_INVALID]\n',
    );
    for (const r of [unknown, e, noLmdb]) expect(r.stderr).not.toMatch(STACK);
  });

  it('replay once the workers stopped: refused while another process holds the lock, then re-published to the durable queue', async () => {
    release();
    await engine.close();
    await store.close();

    const holder = startWorkerProcess(join(import.meta.dirname, 'hold-data-dir.ts'), 'holder', {
      DATA_DIR: dir,
      KEY_PREFIX: keyPrefix,
    });
    await new Promise<void>((resolve, reject) => {
      holder.child.stdout!.on('data', () => holder.stdout.includes('ready') && resolve());
      void holder.exited.then(() => reject(new Error(`holder exited: ${holder.stderr}`)));
    });
    const locked = await mocra('dead-letters', 'replay', ...base());
    holder.child.kill('SIGKILL');
    await holder.exited;
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(
      new RegExp(
        `in use by a running process \\(pid ${holder.child.pid}\\): stop the workers first`,
      ),
    );
    expect(locked.stderr).not.toMatch(STACK);

    // the holder was killed: its lock is stale and the replay takes it over
    const list = await mocra('dead-letters', 'list', ...base(), '--queue', 'parser', '--json');
    const [ghost] = (JSON.parse(list.stdout) as { deadLetters: Letter[] }).deadLetters;
    const r = await mocra('dead-letters', 'replay', ...base(), '--id', ghost!.id, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { replayed: Letter[] }).replayed).toEqual([ghost]);
    expect(existsSync(join(dir, 'mocra.lock'))).toBe(false); // released on exit

    const again = await mocra('dead-letters', 'replay', ...base(), '--id', ghost!.id);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no dead letter with id/);

    // in the parser queue again, at its tail; the malformed one still dead-lettered
    store = await DurableBackend.open({ path: dir, keyPrefix, sweepIntervalMs: 0 });
    expect(deadLetters('parser')).toEqual([]);
    expect(deadLetters('task')).toHaveLength(1);
    const parser = new DurableQueue<string>({
      store,
      name: 'parser',
      keyPrefix: 'chain',
      decode: (p) => p,
    });
    const waiting: string[] = [];
    while (parser.size() > 0) waiting.push((await parser.receive())!.message);
    const replayed = JSON.parse(waiting.at(-1)!) as { kind: string; body: { runId: string } };
    expect(replayed).toMatchObject({ kind: 'parser_task', body: { runId, moduleId: 'ghost' } });
  });
});

describe('mocra command line: choosing the store', () => {
  const usage = async (...argv: string[]) => {
    let err = '';
    const code = await main(argv, { out: () => undefined, err: (t) => (err += t) });
    return { code, err: err.split('\n')[0] };
  };

  it('exactly one of --redis and --data-dir: a usage error (exit 2) otherwise', async () => {
    expect(await usage('inspect')).toEqual({
      code: 2,
      err: 'mocra: --redis <url> or --data-dir <path> is required',
    });
    expect(await usage('dead-letters', 'list', '--redis', 'redis://x', '--data-dir', '/x')).toEqual(
      { code: 2, err: 'mocra: give --redis <url> or --data-dir <path>, not both' },
    );
    expect(await usage('inspect', '--data-dir')).toEqual({
      code: 2,
      err: 'mocra: --data-dir needs a value',
    });
    expect(await usage('inspect', '--data-dir', '')).toEqual({
      code: 2,
      err: 'mocra: --data-dir needs a value',
    });
  });

  it('the help names both stores', async () => {
    let out = '';
    expect(await main(['--help'], { out: (t) => (out += t), err: () => undefined })).toBe(0);
    expect(out).toMatch(/--redis <url>/);
    expect(out).toMatch(/--data-dir <path>/);
  });
});
