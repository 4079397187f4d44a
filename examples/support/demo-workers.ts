/**
 * `npm run demo -- --workers N`: the demo's crawl on N worker processes sharing one Redis.
 *
 * This process is the coordinator. It serves the test site, starts N workers
 * (./demo-worker-process.ts, each the examples' chain worker: RedisBackend state + Redis Stream
 * queues), submits the crawl, and draws the progress from what the workers keep in Redis: the
 * item keys (`<prefix>out:<task>:item:…`, one INCR per item delivered) and one counter snapshot
 * per worker. When every product the site lists is in, it stops the workers with SIGTERM (each
 * finishes or hands back what it holds and exits 0), prints the demo's summary table, the nodes
 * each worker ran, and the exactly-once check, and deletes every key of the run.
 *
 * Bounded in time: workers must be ready within 45 s, the crawl must finish within 60 s, a
 * worker that has not exited 15 s after SIGTERM is killed. Workers never outlive this process:
 * they are killed when it exits and stop by themselves when their stdin (a pipe from here)
 * closes. Ctrl-C stops the workers, cleans up and exits 130.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { RedisBackend, createChainEngine, namespacePrefix, type RunStatus } from 'mocra';
import { submitCrawl } from './chain-worker.js';
import {
  CRAWL_TIMEOUT_MS,
  demoEngineOptions,
  demoSiteOptions,
  drawProgress,
  runProgress,
  printCheck,
  printSummary,
  snapshotKey,
  summaryRows,
  type DemoStats,
  type WorkerSnapshot,
} from './demo-common.js';
import { deleteKeys, isCi, privateRedis, type PrivateRedis } from './private-redis.js';
import { shopModule } from './shop-module.js';
import { startTestSite, type TestSite } from './test-site.js';

const READY_TIMEOUT_MS = 45_000;
const EXIT_TIMEOUT_MS = 15_000;
const POLL_MS = 100;

export interface WorkersDemoOptions {
  /** How many worker processes (validated by the caller: 1..16). */
  workers: number;
  /** Under `npm run examples`: a smaller site, and a private redis-server when REDIS_URL is unset. */
  smoke: boolean;
  /** Whether stdout is a terminal (a bar redrawn in place) or not (plain lines). */
  tty: boolean;
}

interface WorkerProcess {
  name: string;
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const NO_REDIS = `demo: --workers needs Redis, and REDIS_URL is not set.
The worker processes share the chain state, the work queues (Redis Streams) and the rate limit
through one Redis; the demo writes only keys under its own prefix (mocra-demo-<pid>-<time>:) and
deletes them when it is done. Point REDIS_URL at a Redis you can write to, for example:

  REDIS_URL=redis://127.0.0.1:6379 npm run demo -- --workers 4

No Redis at hand? Start a throw-away one on loopback (Debian/Ubuntu: apt-get install redis-server):

  redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no

Without --workers, \`npm run demo\` runs on one node and needs no Redis.`;

/** Runs the multi-process demo; resolves to the process exit code. */
export async function runWorkersDemo(o: WorkersDemoOptions): Promise<number> {
  let redis: PrivateRedis | null = null;
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    if (!o.smoke) {
      console.error(NO_REDIS);
      return 2;
    }
    // the `npm run examples` self-check: a private redis-server, as examples/worker.ts does
    redis = await privateRedis();
    if (!redis) {
      const message = 'demo --workers needs Redis (REDIS_URL or a redis-server binary)';
      if (isCi()) {
        console.error(`${message}; under CI that is a failure`);
        return 1;
      }
      console.log(`skipped: ${message}`);
      return 0;
    }
    redisUrl = redis.url;
  }
  try {
    return await coordinate(o, redisUrl);
  } finally {
    await redis?.stop();
  }
}

/** The Redis address without credentials. */
function redisLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.hostname}:${u.port || '6379'}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return 'REDIS_URL';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `promise`, or `undefined` after `ms`; the timer is cleared either way. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function coordinate(o: WorkersDemoOptions, redisUrl: string): Promise<number> {
  const client = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: 3_000,
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => (times > 5 ? null : 200),
  });
  let lastError: Error | undefined;
  client.on('error', (error: Error) => (lastError = error)); // and commands reject
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    console.error(
      `demo: cannot reach Redis at ${redisLabel(redisUrl)} (REDIS_URL): ` +
        `${(lastError ?? (error as Error)).message}`,
    );
    return 2;
  }

  // one namespace, no `:` inside: the stores percent-escape an inner `:` (namespacePrefix), and
  // the raw reads and the clean-up below go by the prefix as written
  const runId = `${process.pid}-${Date.now()}`;
  const keyPrefix = `mocra-demo-${runId}:`;
  const taskId = `demo-${Date.now()}`;
  // where the workers' store.incr puts the item keys (the same text while keyPrefix has no inner `:`)
  const itemPrefix = `${namespacePrefix(keyPrefix)}out:${taskId}:item:`;
  const workers: WorkerProcess[] = [];
  let site: TestSite | undefined;

  // Ctrl-C / SIGTERM: stop the workers and clean up, then exit 130; a second one exits at once
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
  };
  const killAll = (): void => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  process.on('exit', killAll);

  try {
    site = await startTestSite(demoSiteOptions(o.smoke));
    const expected = site.expectedProducts();
    const productKeys = expected.map((id) => `${itemPrefix}product:${id}`);
    console.log(
      `mocra demo: crawling ${site.url} (${expected.length} products) with the chain engine on ` +
        `${o.workers} worker process${o.workers === 1 ? '' : 'es'}, distributed mode, Redis store ` +
        `and Redis Stream queues (${redisLabel(redisUrl)})`,
    );

    // the workers: same module, same site, this run's key prefix
    const startedAt = performance.now();
    for (let i = 1; i <= o.workers; i++) {
      workers.push(
        startWorker(`w${i}`, {
          REDIS_URL: redisUrl,
          SITE_URL: site.url,
          KEY_PREFIX: keyPrefix,
          DEMO_WORKER_MAX_MS: String(READY_TIMEOUT_MS + CRAWL_TIMEOUT_MS + 60_000),
        }),
      );
    }
    const readyProblem = await waitFor(
      () => workers.every((w) => /^ready$/m.test(w.stdout)),
      workers,
      READY_TIMEOUT_MS,
      () => interrupted,
    );
    if (readyProblem) {
      console.log(`  workers did not start: ${readyProblem}`);
      for (const w of workers) if (w.stderr.trim()) console.log(tail(w));
      return interrupted ? 130 : 1;
    }
    console.log(
      `  ${o.workers} workers ready in ${((performance.now() - startedAt) / 1000).toFixed(1)} s ` +
        `(${workers.map((w) => `${w.name} pid ${w.child.pid}`).join(', ')})`,
    );

    // the crawl: any worker picks the task up
    const started = performance.now();
    const crawlRunId = await submitCrawl(
      { redisUrl, siteUrl: site.url, keyPrefix, engine: demoEngineOptions },
      taskId,
    );
    // the run's status, as any process sharing the store reads it (this engine runs nothing)
    const statusStore = new RedisBackend({ redis: client, keyPrefix });
    const reader = createChainEngine({ modules: [shopModule(site.url)], store: statusStore });
    let run: RunStatus | undefined;

    // progress from Redis, until every product is in (or the time is up, or a worker died)
    const snapshotKeys = workers.map((w) => snapshotKey(keyPrefix, w.name));
    const readSnapshots = async (): Promise<WorkerSnapshot[]> =>
      (await client.mget(...snapshotKeys)).flatMap((json) =>
        json ? [JSON.parse(json) as WorkerSnapshot] : [],
      );
    let finished = false;
    let crashed: string | undefined;
    let lastLine = performance.now(); // plain lines every half second, as single-node
    for (;;) {
      const [counts, snapshots, status] = await Promise.all([
        client.mget(...productKeys),
        readSnapshots(),
        reader.runStatus(crawlRunId).catch(() => run),
      ]);
      run = status;
      const products = counts.filter((c) => c !== null).length;
      finished = products === expected.length;
      const dead = workers.find((w) => w.child.exitCode !== null || w.child.signalCode !== null);
      if (dead) crashed = `worker ${dead.name} exited during the crawl (${exitNow(dead.child)})`;
      const over = performance.now() - started > CRAWL_TIMEOUT_MS;
      const last = finished || crashed !== undefined || over || interrupted;
      if (o.tty || last || performance.now() - lastLine >= 500) {
        lastLine = performance.now();
        const sum = (f: (s: WorkerSnapshot) => number): number =>
          snapshots.reduce((n, s) => n + f(s), 0);
        drawProgress(
          {
            products,
            expected: expected.length,
            ...runProgress(run),
            downloads: sum((s) => s.stats.downloads),
            downloadRetries: sum((s) => s.stats.downloadRetries),
            retriesScheduled: sum((s) => s.stats.retriesScheduled),
          },
          o.tty,
        );
      }
      if (last) break;
      await sleep(POLL_MS);
    }
    if (o.tty) process.stdout.write('\n');
    const wallMs = performance.now() - started;
    await reader.close();

    // graceful stop: each worker finishes or hands back what it holds, publishes and exits 0
    const stopping = performance.now();
    for (const w of workers) w.child.kill('SIGTERM');
    console.log(`  ${finished ? 'every product is in; ' : ''}stopping the workers (SIGTERM)`);
    const exits = await within(Promise.all(workers.map((w) => w.exited)), EXIT_TIMEOUT_MS);
    const stopMs = performance.now() - stopping;
    if (interrupted) {
      console.log(`  interrupted: ${describeExits(exits)}; deleting the run's keys`);
      return 130;
    }
    const problems: string[] = [];
    if (!exits) {
      killAll();
      problems.push(`workers still running ${EXIT_TIMEOUT_MS / 1000} s after SIGTERM, killed`);
    } else {
      for (const [i, e] of exits.entries()) {
        if (e.code !== 0) problems.push(`worker ${workers[i]!.name} exited with ${exitOf(e)}`);
      }
    }
    if (crashed || problems.length > 0)
      for (const w of workers) if (w.stderr.trim()) problems.push(tail(w));

    // the final counters and every item the workers delivered
    const snapshots = await readSnapshots();
    for (const w of workers) {
      const s = snapshots.find((x) => x.name === w.name);
      if (!s?.stopped) problems.push(`worker ${w.name} left no final counters`);
    }
    const items = await readItems(client, itemPrefix);
    const stats = sumStats(snapshots.map((s) => s.stats));
    const deadLettered = snapshots.reduce((n, s) => n + s.stats.deadLettered, 0);
    if (deadLettered > 0) problems.push(`${deadLettered} messages dead-lettered`);

    const expectedSet = new Set(expected);
    const reviewsOf = new Set([...items.reviews.keys()].map((k) => k.slice(0, k.indexOf(':'))));
    const rows = summaryRows({
      stats,
      limiter: {
        waits: snapshots.reduce((n, s) => n + s.limiter.waits, 0),
        totalWaitMs: snapshots.reduce((n, s) => n + s.limiter.totalWaitMs, 0),
      },
      products: items.products.size,
      reviews: items.reviews.size,
      statuses: site.statuses,
      nodesSeen: snapshots.reduce((n, s) => n + s.nodesSeen, 0),
      wallMs,
    });
    rows.push(
      [
        'nodes run per worker',
        workers
          .map((w) => `${w.name} ${snapshots.find((s) => s.name === w.name)?.nodesDone ?? '?'}`)
          .join(', '),
      ],
      ['workers stopped (SIGTERM)', `${describeExits(exits)} in ${Math.round(stopMs)} ms`],
    );
    printSummary(rows);
    const ok = printCheck({
      finished,
      ...(crashed ? { unfinished: crashed } : {}),
      expected: expected.length,
      missing: expected.filter((id) => !items.products.has(id)),
      twice: [...items.products].filter(([, n]) => n > 1).map(([id]) => id),
      unknown: [...items.products.keys()].filter((id) => !expectedSet.has(id)),
      withoutReviews: expected.filter((id) => !reviewsOf.has(id)),
      duplicateReviews: [...items.reviews.values()].reduce((n, c) => n + Math.max(0, c - 1), 0),
      problems,
    });
    return ok ? 0 : 1;
  } finally {
    killAll();
    await within(Promise.all(workers.map((w) => w.exited)), 5_000);
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    process.off('exit', killAll);
    // the key prefix is this run's own: leave nothing behind
    await deleteKeys(client, keyPrefix).catch((error: unknown) => {
      console.error(`demo: could not delete the keys under ${keyPrefix}: ${String(error)}`);
    });
    client.disconnect();
    await site?.close();
  }
}

function startWorker(name: string, env: Record<string, string>): WorkerProcess {
  // the same TypeScript loader this demo runs under (tsx), resolved from here, not from the cwd
  const loader = import.meta.resolve('tsx');
  const entry = fileURLToPath(new URL('./demo-worker-process.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', loader, entry], {
    env: { ...process.env, ...env, WORKER_NAME: name },
    // stdin stays open: the worker stops when it closes, i.e. when this process is gone
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const worker: WorkerProcess = {
    name,
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    ),
  };
  child.stdout!.on('data', (c: Buffer) => (worker.stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (worker.stderr = (worker.stderr + c).slice(-8_000)));
  child.stdin!.on('error', () => {}); // a worker that already exited
  return worker;
}

/** Waits until `done()`; a reason when a worker exits first, the time is up or we are interrupted. */
async function waitFor(
  done: () => boolean,
  workers: WorkerProcess[],
  ms: number,
  interrupted: () => boolean,
): Promise<string | undefined> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (done()) return undefined;
    const dead = workers.find((w) => w.child.exitCode !== null || w.child.signalCode !== null);
    if (dead) return `worker ${dead.name} exited (${exitNow(dead.child)})`;
    if (interrupted()) return 'interrupted';
    if (performance.now() > deadline) return `not all ready within ${ms / 1000} s`;
    await sleep(50);
  }
}

function exitOf(e: { code: number | null; signal: string | null }): string {
  return e.signal ? `signal ${e.signal}` : `code ${e.code}`;
}

function describeExits(
  exits: { code: number | null; signal: string | null }[] | undefined,
): string {
  if (!exits) return 'not all exited, killed';
  if (exits.every((e) => e.code === 0)) return `${exits.length} of ${exits.length} exited 0`;
  return `exits ${exits.map((e) => e.code ?? e.signal).join('/')}`;
}

function exitNow(child: ChildProcess): string {
  return exitOf({ code: child.exitCode, signal: child.signalCode });
}

function tail(w: WorkerProcess): string {
  const lines = w.stderr.trim().split('\n').slice(-15);
  return `${w.name} stderr:\n${lines.map((l) => `    ${l}`).join('\n')}`;
}

/** Every item key under `prefix`: products by id and reviews by `<productId>:<text>`, with their counts. */
async function readItems(
  client: Redis,
  prefix: string,
): Promise<{ products: Map<string, number>; reviews: Map<string, number> }> {
  const products = new Map<string, number>();
  const reviews = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length === 0) continue;
    const counts = await client.mget(...keys);
    keys.forEach((key, i) => {
      const item = key.slice(prefix.length); // product:<id> or review:<productId>:<text>
      const n = Number(counts[i] ?? 0);
      if (item.startsWith('product:')) products.set(item.slice('product:'.length), n);
      else if (item.startsWith('review:')) reviews.set(item.slice('review:'.length), n);
    });
  } while (cursor !== '0');
  return { products, reviews };
}

function sumStats(all: DemoStats[]): DemoStats {
  const total: DemoStats = {
    items: 0,
    downloads: 0,
    downloadRetries: 0,
    retriesScheduled: 0,
    nodesGivenUp: 0,
    fallbacks: 0,
    fallbacksRefused: 0,
    deduplicated: 0,
    modulesTerminated: 0,
    commits: {},
    cacheHits: 0,
    cacheMisses: 0,
  };
  for (const s of all) {
    total.items += s.items;
    total.downloads += s.downloads;
    total.downloadRetries += s.downloadRetries;
    total.retriesScheduled += s.retriesScheduled;
    total.nodesGivenUp += s.nodesGivenUp;
    total.fallbacks += s.fallbacks;
    total.fallbacksRefused += s.fallbacksRefused;
    total.deduplicated += s.deduplicated ?? 0;
    total.modulesTerminated += s.modulesTerminated;
    total.cacheHits += s.cacheHits ?? 0;
    total.cacheMisses += s.cacheMisses ?? 0;
    for (const [result, n] of Object.entries(s.commits))
      total.commits[result] = (total.commits[result] ?? 0) + n;
  }
  return total;
}
