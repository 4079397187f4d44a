/**
 * Runs (DESIGN §5 rule 4) on both stores: a run's status is counted by the transitions
 * themselves and equals what the events of a faulty crawl say; waitForRun resolves with the
 * final status, also in another process; cancelRun stops every claim of the run, in every
 * engine sharing the store; a finished run leaves no key after finishedRunTtlMs; close()
 * leaves no handle behind.
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ClaimCode,
  LocalBackend,
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  defineModule,
  isMocraError,
  type CacheService,
  type ChainEngine,
  type ChainEngineOptions,
  type ChainStateStore,
  type ClaimInput,
  type DownloadResult,
  type Downloader,
  type ModuleDefinition,
} from '../../../src/index.js';
import { LocalChainState, RedisChainState } from '../../../src/chain/state/index.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { describeRedis, redisUrl, useRedis } from '../../helpers/redis.js';
import { startWorkerProcess } from '../../helpers/worker-process.js';

const PAGES = 20;
const FAST = {
  nodeRetry: { maxRetries: 2, initialDelayMs: 5, maxDelayMs: 10, jitter: 0 },
  downloadRetry: { maxRetries: 0 },
  rateLimit: { global: false as const, perKey: false as const },
  retryPollMs: 5,
  moduleErrorThreshold: 1_000,
  taskErrorThreshold: 1_000,
};

const ok = (body: string): DownloadResult => ({ status: 200, headers: {}, body });
const echo: Downloader = async (request) => ok(request.url);

/**
 * A faulty crawl: seed → PAGES pages; page i%5==1 fails once then succeeds, i%5==3 always fails
 * (given up after the retries), i%5==0 has a detail step, every page gives one item.
 */
function faultyModule(id = 'faulty'): ModuleDefinition {
  const tries = new Map<number, number>();
  return defineModule({
    id,
    steps: [
      {
        name: 'seed',
        generate: () => [{ url: 'mem://seed' }],
        parse: () => ({ next: Array.from({ length: PAGES }, (_, i) => i) }),
      },
      {
        name: 'page',
        generate: (ctx) => [{ url: `mem://page/${String(ctx.input)}` }],
        parse: (_r, ctx) => {
          const i = ctx.input as number;
          const n = (tries.get(i) ?? 0) + 1;
          tries.set(i, n);
          if (i % 5 === 3 || (i % 5 === 1 && n === 1)) throw new Error(`page ${i} broke`);
          return { items: [{ page: i }], next: i % 5 === 0 ? [i] : [] };
        },
      },
      {
        name: 'detail',
        generate: (ctx) => [{ url: `mem://detail/${String(ctx.input)}` }],
        parse: (_r, ctx) => ({ items: [{ detail: ctx.input as number }] }),
      },
    ],
  });
}

interface Store {
  name: string;
  store(): Promise<CacheService>;
}

const open: ChainEngine[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

function engine(options: Partial<ChainEngineOptions> & Pick<ChainEngineOptions, 'modules'>) {
  const e = createChainEngine({ downloader: echo, ...FAST, ...options });
  open.push(e);
  return e;
}

function runOnBothStores(fn: (s: Store) => void): void {
  describe('local store', () => fn({ name: 'local', store: async () => new LocalBackend() }));
  describeRedis('redis store', () => {
    const redis = useRedis();
    fn({
      name: 'redis',
      store: async () => {
        const store = new RedisBackend({ redis: redis.url, keyPrefix: redis.prefix });
        await store.connect();
        return store;
      },
    });
  });
}

runOnBothStores((s) => {
  it('status counters equal the events of a faulty crawl; waitForRun resolves with it', async () => {
    const store = await s.store();
    const counted = { committed: 0, errors: 0, failed: 0, items: 0 };
    const e = engine({ modules: [faultyModule()], store, onItem: () => void counted.items++ });
    e.on('ModuleStepAdvanced', () => counted.committed++);
    e.on('ErrorTaskProduced', () => counted.errors++);
    e.on('NodeFailed', () => counted.failed++);
    await e.start();
    const { taskId, runId } = await e.submit({
      taskId: 'faulty-1',
      runId: `run-${s.name}`,
      account: 'acme',
      platform: 'web',
      modules: ['faulty'],
    });
    expect(taskId).toBe('faulty-1');
    const early = await e.runStatus(runId);
    expect(early.state).toBe('running');
    const final = await e.waitForRun(runId, { timeoutMs: 20_000 });
    // 1 seed + 20 pages + 4 details; pages 3, 8, 13, 18 fail 3 times (2 retries) and are given
    // up; pages 1, 6, 11, 16 fail once
    expect(counted).toEqual({ committed: 21, errors: 16, failed: 4, items: 20 });
    expect(final).toMatchObject({
      runId,
      taskId,
      state: 'done',
      nodes: { queued: 0, running: 0, done: counted.committed, failed: counted.failed },
      items: counted.items,
      errors: counted.errors,
    });
    expect(final.modules).toEqual({
      faulty: { state: 'done', nodes: final.nodes, items: 20, errors: 16 },
    });
    expect(final.finishedAt).toBeGreaterThanOrEqual(final.startedAt);
    expect(await e.runStatus(runId)).toEqual(final);
    await e.close();
    await store.close();
  });

  it('a threshold ends the run terminated; an unknown run is RUN_NOT_FOUND', async () => {
    const store = await s.store();
    const broken = defineModule({
      id: 'broken',
      steps: [
        {
          name: 'seed',
          generate: () => [{ url: 'mem://seed' }],
          parse: () => ({ next: [1, 2, 3, 4, 5, 6] }),
        },
        {
          name: 'fail',
          generate: (ctx) => [{ url: `mem://x/${String(ctx.input)}` }],
          parse: () => {
            throw new Error('always');
          },
        },
      ],
    });
    const e = engine({ modules: [broken], store, moduleErrorThreshold: 2 });
    await e.start();
    const { runId } = await e.submit({
      taskId: 'broken-1',
      account: 'a',
      platform: 'p',
      modules: ['broken', 'not-registered'],
    });
    const final = await e.waitForRun(runId, { timeoutMs: 20_000 });
    expect(final.state).toBe('terminated');
    expect(final.modules['broken']!.state).toBe('terminated');
    expect(final.modules['not-registered']!.state).toBe('skipped');
    const error = await e.runStatus('no-such-run').catch((err: unknown) => err);
    expect(isMocraError(error, 'RUN_NOT_FOUND')).toBe(true);
    await expect(e.waitForRun('no-such-run')).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
    await e.close();
    await store.close();
  });

  it('waitForRun rejects on abort (TASK_CANCELLED) and on timeout (TASK_TIMEOUT)', async () => {
    const store = await s.store();
    // never started: the run stays running
    const e = engine({ modules: [faultyModule()], store });
    const { runId } = await e.submit({
      taskId: 't',
      account: 'a',
      platform: 'p',
      modules: ['faulty'],
    });
    await expect(e.waitForRun(runId, { timeoutMs: 30 })).rejects.toMatchObject({
      code: 'TASK_TIMEOUT',
    });
    const ac = new AbortController();
    const waiting = e.waitForRun(runId, { signal: ac.signal });
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'TASK_CANCELLED' });
    await e.close();
    await store.close();
  });

  it('waitForRun, runStatus and cancelRun refuse bad arguments with CONFIG_INVALID naming the field', async () => {
    const store = await s.store();
    // never started: the run stays running, so a wait that accepted its options would hang
    const e = engine({ modules: [faultyModule()], store });
    const { runId } = await e.submit({
      taskId: 't',
      account: 'a',
      platform: 'p',
      modules: ['faulty'],
    });
    const bad: [unknown, string][] = [
      [{ timeoutMs: -1 }, 'timeoutMs'],
      [{ timeoutMs: Number.NaN }, 'timeoutMs'],
      [{ timeoutMs: '100' }, 'timeoutMs'],
      [{ signal: 5 }, 'signal'],
      [{ timeout: 100 }, 'timeout'],
      ['fast', 'options'],
    ];
    for (const [options, field] of bad) {
      const error = await e.waitForRun(runId, options as { timeoutMs?: number }).then(
        () => 'resolved',
        (err: unknown) => err,
      );
      expect(
        isMocraError(error, 'CONFIG_INVALID'),
        `${JSON.stringify(options)}: ${String(error)}`,
      ).toBe(true);
      expect((error as { context: { field?: string } }).context.field).toBe(field);
    }
    for (const call of [
      () => e.runStatus(5 as unknown as string),
      () => e.waitForRun(null as unknown as string),
      () => e.cancelRun(undefined as unknown as string),
    ]) {
      await expect(call()).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        context: { field: 'runId' },
      });
    }
    // a wait of 0 ms looks once; a run id nobody submitted is still RUN_NOT_FOUND
    await expect(e.waitForRun(runId, { timeoutMs: 0 })).rejects.toMatchObject({
      code: 'TASK_TIMEOUT',
    });
    await expect(e.runStatus('')).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
    await e.close();
    await store.close();
  });

  it('cancelRun: in-flight nodes see their signal aborted, no claim of the run executes after it, idempotent', async () => {
    const store = await s.store();
    const claims: { afterCancel: boolean; code: number }[] = [];
    let cancelled = false;
    const inner: ChainStateStore =
      store instanceof RedisBackend
        ? new RedisChainState(store)
        : new LocalChainState(store as LocalBackend);
    const state = new Proxy(inner, {
      get(target, name, receiver) {
        if (name !== 'claim') return bound(target, name, receiver);
        return async (input: ClaimInput) => {
          const afterCancel = cancelled;
          const result = await target.claim(input);
          claims.push({ afterCancel, code: result.code });
          return result;
        };
      },
    });
    const aborted: string[] = [];
    let started!: () => void;
    const someStarted = new Promise<void>((r) => (started = r));
    const slow: Downloader = async (request, ctx) => {
      if (!request.url.startsWith('mem://page/')) return ok(request.url);
      started();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 5_000);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(t);
          aborted.push(request.url);
          resolve();
        });
      });
      if (ctx.signal.aborted) throw ctx.signal.reason;
      return ok(request.url);
    };
    const e = engine({
      modules: [faultyModule()],
      store,
      state,
      downloader: slow,
      concurrency: { parser: 4 },
    });
    await e.start();
    const { runId } = await e.submit({
      taskId: 'c',
      account: 'a',
      platform: 'p',
      modules: ['faulty'],
    });
    await someStarted;
    await e.cancelRun(runId);
    cancelled = true;
    await e.cancelRun(runId); // idempotent
    const status = await e.waitForRun(runId, { timeoutMs: 5_000 });
    expect(status.state).toBe('cancelled');
    // the nodes still queued meet the cancel at their claim
    await until(
      () => claims.some((c) => c.afterCancel && c.code === ClaimCode.STALE_STEP),
      5_000,
      () => JSON.stringify(claims),
    );
    await e.close();
    expect(aborted.length).toBeGreaterThan(0);
    expect(claims.filter((c) => c.afterCancel && c.code === ClaimCode.EXECUTE)).toEqual([]);
    expect(claims.some((c) => c.afterCancel && c.code === ClaimCode.STALE_STEP)).toBe(true);
    expect(status.nodes.done).toBeLessThan(21);
    await store.close();
  });

  it('a finished run leaves no key of its own after finishedRunTtlMs', async () => {
    const store = await s.store();
    const e = engine({ modules: [faultyModule()], store, finishedRunTtlMs: 150 });
    await e.start();
    const { runId } = await e.submit({
      taskId: 'gc',
      account: 'a',
      platform: 'p',
      modules: ['faulty'],
    });
    await e.waitForRun(runId, { timeoutMs: 20_000 });
    await e.close(); // waits for the clean-up
    await new Promise((r) => setTimeout(r, 300));
    const keys = new ChainKeyBuilder();
    const left = await liveKeys(store);
    expect(
      left.filter((k) => k.includes(keys.tag('gc')) || k.includes(keys.runIndex(runId))),
    ).toEqual([]);
    await store.close();
  });

  it('close() leaves no handle behind', async () => {
    const before = process.getActiveResourcesInfo();
    const e = createChainEngine({ modules: [faultyModule()], downloader: echo, ...FAST });
    await e.start();
    const { runId } = await e.submit({
      taskId: 'h',
      account: 'a',
      platform: 'p',
      modules: ['faulty'],
    });
    await e.waitForRun(runId, { timeoutMs: 20_000 });
    await e.close();
    await e.close(); // idempotent
    await new Promise((r) => setImmediate(r));
    expect(extra(process.getActiveResourcesInfo(), before)).toEqual([]);
  });
});

/** A member of `target`, methods bound to it (its private fields need the real receiver). */
function bound(target: object, name: string | symbol, receiver: unknown): unknown {
  const value = Reflect.get(target, name, receiver) as unknown;
  return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
}

/** Resources in `after` that `before` did not have (as a multiset). */
function extra(after: string[], before: string[]): string[] {
  const left = [...before];
  return after.filter((r) => {
    const i = left.indexOf(r);
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
}

/** Every live key of a store (SCAN on Redis, the in-process store's own list otherwise). */
async function liveKeys(store: CacheService): Promise<string[]> {
  if (store instanceof LocalBackend) return store.store.keys();
  const url = redisUrl()!;
  const client = new Redis(url);
  try {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
    return out;
  } finally {
    client.disconnect();
  }
}

describeRedis('runs across processes', () => {
  const redis = useRedis();

  it('waitForRun in a second process resolves with the same final status', async () => {
    const store = new RedisBackend({ redis: redis.url, keyPrefix: redis.prefix });
    await store.connect();
    const client = redis.client();
    const queues = createRedisStreamQueues({
      client,
      keyPrefix: redis.prefix,
      consumer: 'main',
      blockMs: 50,
    });
    const e = engine({ modules: [faultyModule()], store, queues });
    const { runId } = await e.submit({
      taskId: 'x',
      account: 'a',
      platform: 'p',
      modules: ['faulty'],
    });
    const waiter = startWorkerProcess(
      join(import.meta.dirname, 'fixtures', 'run-waiter.ts'),
      'waiter',
      {
        REDIS_URL: redis.url,
        KEY_PREFIX: redis.prefix,
        RUN_ID: runId,
      },
    );
    await until(
      () => waiter.stdout.includes('waiting'),
      20_000,
      () => waiter.stderr,
    );
    await e.start();
    const exit = await waiter.exited;
    expect(exit.code, waiter.stderr).toBe(0);
    const theirs = JSON.parse(waiter.stdout.split('\n').find((l) => l.startsWith('{'))!) as unknown;
    const ours = await e.runStatus(runId);
    expect(ours.state).toBe('done');
    expect(theirs).toEqual(ours);
    await e.close();
    await Promise.all([queues.task, queues.parser, queues.error].map((q) => q.shutdown()));
    await store.close();
  });
});

describeRedis('cancel across engines', () => {
  const redis = useRedis();

  it('a cancel by one engine stops the claims of every engine sharing the store', async () => {
    const claims: { engine: string; afterCancel: boolean; code: number }[] = [];
    let cancelled = false;
    let started!: () => void;
    const someStarted = new Promise<void>((r) => (started = r));
    const slow: Downloader = async (request, ctx) => {
      if (!request.url.startsWith('mem://page/')) return ok(request.url);
      started();
      await new Promise((r) => setTimeout(r, 30));
      if (ctx.signal.aborted) throw ctx.signal.reason;
      return ok(request.url);
    };
    const engines: ChainEngine[] = [];
    const closers: (() => Promise<void>)[] = [];
    for (const name of ['a', 'b']) {
      const store = new RedisBackend({ redis: redis.url, keyPrefix: redis.prefix });
      await store.connect();
      const inner = new RedisChainState(store);
      const state = new Proxy(inner, {
        get(target, prop, receiver) {
          if (prop !== 'claim') return bound(target, prop, receiver);
          return async (input: ClaimInput) => {
            const afterCancel = cancelled;
            const result = await target.claim(input);
            claims.push({ engine: name, afterCancel, code: result.code });
            return result;
          };
        },
      });
      const queues = createRedisStreamQueues({
        client: redis.client(),
        keyPrefix: redis.prefix,
        consumer: name,
        blockMs: 50,
      });
      const e = engine({
        modules: [faultyModule()],
        store,
        state,
        queues,
        downloader: slow,
        workerId: name,
        concurrency: { parser: 2 },
      });
      engines.push(e);
      closers.push(async () => {
        await e.close();
        await Promise.all([queues.task, queues.parser, queues.error].map((q) => q.shutdown()));
        await store.close();
      });
    }
    const [a, b] = engines as [ChainEngine, ChainEngine];
    const { runId } = await a.submit({
      taskId: 'xc',
      account: 'a',
      platform: 'p',
      modules: ['faulty'],
    });
    await a.start();
    await b.start();
    await someStarted;
    await a.cancelRun(runId);
    // a claim that starts from here on runs after the cancel: it must not execute
    cancelled = true;
    expect((await b.waitForRun(runId, { timeoutMs: 5_000 })).state).toBe('cancelled');
    // let both engines drain what they had read
    await new Promise((r) => setTimeout(r, 300));
    for (const close of closers) await close();
    expect(claims.filter((c) => c.afterCancel && c.code === ClaimCode.EXECUTE)).toEqual([]);
  });
});

async function until(cond: () => boolean, ms: number, why: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${why()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
