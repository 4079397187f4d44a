/**
 * `npm run demo`: crawls a local test site with the task-chain engine, in one process, with no
 * Redis. The crawl is one module of three steps (examples/support/shop-module.ts):
 *
 *   catalogue → list pages → product detail + reviews
 *
 * The list pages are a list of unknown length: each links to the next (a route to the same
 * step), and the last one back to the first — a cycle. Products link to related products in
 * other categories. Every route carries a de-duplication key, so every page and product runs
 * once however many links reach it, and the cycle ends.
 *
 * The site misbehaves on purpose: some endpoints are slow, some answer 503 three times in a row
 * before they recover, and a server-side budget answers 429 with Retry-After when we go too
 * fast. Two layers absorb that: a download is retried inside its node (Retry-After honoured),
 * and when a node still fails it emits one ErrorTaskModel and is retried as a whole later. A
 * RateLimiter keeps the request rate near the site's budget. Every node commits once, so every
 * product comes out once, however often its pages were fetched.
 *
 * Shows a progress bar on a terminal (plain lines otherwise), then a summary, and exits
 * non-zero unless every product the site lists was produced exactly once.
 *
 * With REDIS_URL set, the chain state and the rate limiter live on Redis (RedisBackend,
 * distributed-mode state machine in Lua); the queues stay in this process.
 *
 * `--workers N` (1..16, needs REDIS_URL) runs the same crawl on N worker processes that share
 * the chain state, the work queues (Redis Streams) and the rate limit through Redis; this
 * process serves the site, submits the crawl, shows the progress from counters the workers keep
 * in Redis, stops them with SIGTERM and checks every product came out exactly once
 * (examples/support/demo-workers.ts):
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npm run demo -- --workers 4
 *
 * `--data-dir DIR` runs the single-node crawl on the durable store in DIR (needs the optional
 * package `lmdb`): interrupt it (Ctrl-C or kill -9) and run the same command again to resume;
 * it ends with the same exactly-once check, over every lifetime (examples/support/demo-durable.ts):
 *
 *   npm run demo -- --data-dir ./demo-data
 *
 * Exit codes: 0 ok, 1 the check failed, 2 bad arguments or no usable Redis for --workers, 130
 * interrupted (--data-dir: run it again to resume).
 */
import { startTestSite } from './support/test-site.js';
import { shopModule, type ShopItem } from './support/shop-module.js';
import {
  CRAWL_TIMEOUT_MS,
  demoEngineOptions,
  demoLimiterOptions,
  demoSiteOptions,
  drawProgress,
  runProgress,
  printCheck,
  printSummary,
  summaryRows,
  type DemoProgress,
} from './support/demo-common.js';
import { RateLimiter, createCacheService, createChainEngine, type RunStatus } from 'mocra';

const MAX_WORKERS = 16;
const smoke = process.env.MOCRA_EXAMPLE_SMOKE === '1';
const tty = process.stdout.isTTY === true;

const { workers, dataDir } = parseArgs(process.argv.slice(2));
if (dataDir !== undefined) {
  // loaded only when asked for: lmdb is an optional dependency
  const { runDurableDemo } = await import('./support/demo-durable.js');
  process.exitCode = await runDurableDemo({ dataDir, smoke, tty });
} else if (workers === undefined) {
  await singleNode();
} else {
  // loaded only when asked for: the single-node demo does not touch Redis at all
  const { runWorkersDemo } = await import('./support/demo-workers.js');
  process.exitCode = await runWorkersDemo({ workers, smoke, tty });
}

/**
 * `--workers N` / `--workers=N` → N; `--data-dir DIR` / `--data-dir=DIR` → DIR; anything else:
 * a usage error (exit 2).
 */
function parseArgs(args: string[]): { workers?: number; dataDir?: string } {
  const usage =
    'usage: npm run demo [-- --workers N | --data-dir DIR]   (N from 1 to ' +
    `${MAX_WORKERS}; --workers needs REDIS_URL; --data-dir needs lmdb)`;
  let value: string | undefined;
  let dataDir: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-h' || arg === '--help') {
      console.log(usage);
      process.exit(0);
    } else if (arg === '--workers') {
      value = args[++i] ?? '';
    } else if (arg.startsWith('--workers=')) {
      value = arg.slice('--workers='.length);
    } else if (arg === '--data-dir') {
      dataDir = args[++i] ?? '';
    } else if (arg.startsWith('--data-dir=')) {
      dataDir = arg.slice('--data-dir='.length);
    } else {
      console.error(`demo: unknown argument ${JSON.stringify(arg)}\n${usage}`);
      process.exit(2);
    }
  }
  if (dataDir !== undefined) {
    if (dataDir === '' || value !== undefined) {
      console.error(`demo: --data-dir needs a directory and goes without --workers\n${usage}`);
      process.exit(2);
    }
    return { dataDir };
  }
  if (value === undefined) return {};
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_WORKERS) {
    console.error(
      `demo: --workers needs a whole number from 1 to ${MAX_WORKERS}, got ${JSON.stringify(value)}\n${usage}`,
    );
    process.exit(2);
  }
  return { workers: n };
}

async function singleNode(): Promise<void> {
  const site = await startTestSite(demoSiteOptions(smoke));
  const expected = site.expectedProducts();

  const store = await createCacheService({
    ...(process.env.REDIS_URL ? { redis: process.env.REDIS_URL } : {}),
    keyPrefix: `mocra-demo-${Date.now()}:`,
  });
  const limiter = new RateLimiter({
    ...demoLimiterOptions,
    ...(store.mode === 'distributed' ? { store } : {}),
  });

  const products = new Map<string, number>();
  const reviews = new Map<string, Set<string>>();
  let duplicateReviews = 0;
  let nodesSeen = 0;

  const engine = createChainEngine({
    ...demoEngineOptions,
    modules: [shopModule(site.url)],
    store,
    rateLimit: limiter,
    onItem: ({ item }) => {
      const it = item as ShopItem;
      if (it.kind === 'product') {
        products.set(it.id, (products.get(it.id) ?? 0) + 1);
      } else {
        const seen = reviews.get(it.productId) ?? new Set<string>();
        if (seen.has(it.text)) duplicateReviews++;
        seen.add(it.text);
        reviews.set(it.productId, seen);
      }
    },
  });
  engine.on('ParserTaskProduced', (e) => {
    if (e.source !== 'retry') nodesSeen++;
  });

  // progress: the run's status (the same read as with --workers), redrawn in place on a
  // terminal, a plain line every half second otherwise
  const current: { runId?: string; run?: RunStatus } = {};
  const progress = (): DemoProgress => {
    const s = engine.stats();
    return {
      products: products.size,
      expected: expected.length,
      ...runProgress(current.run),
      downloads: s.downloads,
      downloadRetries: s.downloadRetries,
      retriesScheduled: s.retriesScheduled,
    };
  };
  let reading = false;
  const draw = (): void => {
    drawProgress(progress(), tty);
    if (current.runId === undefined || reading) return;
    reading = true;
    engine
      .runStatus(current.runId)
      .then((status) => (current.run = status))
      .catch(() => {})
      .finally(() => (reading = false));
  };

  console.log(
    `mocra demo: crawling ${site.url} (${expected.length} products) with the chain engine, ` +
      `${engine.runtimeMode} mode, ${store.mode === 'distributed' ? 'Redis' : 'in-process'} store`,
  );
  const started = performance.now();
  const ticker = setInterval(draw, tty ? 100 : 500);
  await engine.start();
  const { runId } = await engine.submit({
    taskId: `demo-${Date.now()}`,
    account: 'demo',
    platform: 'web',
    modules: ['shop'],
  });
  current.runId = runId;

  // bounded in time: a crawl that has not finished in 60 s is a failure, not a hang
  const finished = await engine.waitForRun(runId, { timeoutMs: CRAWL_TIMEOUT_MS }).then(
    (status) => ((current.run = status), status.state === 'done'),
    () => false,
  );
  clearInterval(ticker);
  drawProgress(progress(), tty);
  if (tty) process.stdout.write('\n');
  const wallMs = performance.now() - started;
  await engine.stop();

  const l = limiter.stats();
  printSummary(
    summaryRows({
      stats: engine.stats(),
      limiter: l,
      products: products.size,
      reviews: [...reviews.values()].reduce((n, set) => n + set.size, 0),
      statuses: site.statuses,
      nodesSeen,
      wallMs,
    }),
  );
  printCheck({
    finished,
    expected: expected.length,
    missing: expected.filter((id) => !products.has(id)),
    twice: [...products].filter(([, n]) => n > 1).map(([id]) => id),
    unknown: [...products.keys()].filter((id) => !expected.includes(id)),
    withoutReviews: expected.filter((id) => !reviews.has(id)),
    duplicateReviews,
  });

  if (store.mode === 'distributed') {
    // the key prefix is this run's own: leave nothing behind
    for await (const key of store.scan('')) await store.del(key);
  }
  await store.close();
  await site.close();
}
