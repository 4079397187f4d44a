/**
 * `npm run demo -- --data-dir DIR`: the single-node demo on the durable store. Everything the
 * crawl needs to go on — chain state, queues, outboxes, retries, and the demo's own tally of
 * the products it received — lives in DIR (LMDB, `npm install lmdb`). Interrupt it (Ctrl-C, or
 * kill -9) and run the same command again: it serves the site on the same port (the stored
 * requests point there), starts the engine on the same directory, and the engine resumes; the
 * run ends with the same exactly-once check, counted over every lifetime. A finished run only
 * prints its check again; delete DIR to start over.
 */
import { createHash } from 'node:crypto';
import {
  RateLimiter,
  createCacheService,
  createChainEngine,
  type CacheService,
} from '../../src/index.js';
import { startTestSite } from './test-site.js';
import { shopModule, type ShopItem } from './shop-module.js';
import {
  CRAWL_TIMEOUT_MS,
  demoEngineOptions,
  demoLimiterOptions,
  demoSiteOptions,
  drawProgress,
  printCheck,
  printSummary,
  summaryRows,
} from './demo-common.js';

interface RunRecord {
  port: number;
  taskId: string;
  finished: boolean;
  /** The site's size is the first lifetime's (MOCRA_EXAMPLE_SMOKE). */
  smoke: boolean;
}

const RUN = 'demo:run';
/** Longer than the slowest node here (two downloads, retried on 503 and 429 within the node). */
const LEASE_MS = 8_000;
const hash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

/** Counts the products and reviews of every lifetime, idempotently by item id. */
async function tally(store: CacheService, expected: string[]) {
  const products = new Map<string, number>();
  for await (const key of store.scan('demo:product:')) {
    products.set(key.slice('demo:product:'.length), Number(await store.get(key)));
  }
  const withReviews = new Set<string>();
  for await (const key of store.scan('demo:reviewed:')) withReviews.add(key.slice(14));
  return {
    products,
    reviews: Number((await store.get('demo:reviews')) ?? 0),
    duplicateReviews: Number((await store.get('demo:duplicate-reviews')) ?? 0),
    redelivered: Number((await store.get('demo:redelivered')) ?? 0),
    missing: expected.filter((id) => !products.has(id)),
    twice: [...products].filter(([, n]) => n > 1).map(([id]) => id),
    unknown: [...products.keys()].filter((id) => !expected.includes(id)),
    withoutReviews: expected.filter((id) => !withReviews.has(id)),
  };
}

/** Runs (or resumes) the durable demo in `dataDir`; returns the exit code. */
export async function runDurableDemo(options: {
  dataDir: string;
  smoke: boolean;
  tty: boolean;
}): Promise<number> {
  const { dataDir, smoke, tty } = options;
  const store = await createCacheService({ path: dataDir });
  const stored = await store.get(RUN);
  const run: RunRecord = stored
    ? (JSON.parse(stored) as RunRecord)
    : { port: 0, taskId: `demo-${Date.now()}`, finished: false, smoke };
  const site = await startTestSite({ ...demoSiteOptions(run.smoke), port: run.port });
  const expected = site.expectedProducts();
  if (!stored) {
    run.port = Number(new URL(site.url).port);
    await store.set(RUN, JSON.stringify(run));
  }

  if (run.finished) {
    console.log(
      `mocra demo: the run in ${dataDir} has finished; delete the directory to start over`,
    );
    const t = await tally(store, expected);
    printCheck({ finished: true, expected: expected.length, ...t });
    await site.close();
    await store.close();
    return process.exitCode === 1 ? 1 : 0;
  }

  // progress over every lifetime: the counters live in the store too
  let nodesSeen = Number((await store.get('demo:nodes-seen')) ?? 0);
  let nodesDone = Number((await store.get('demo:nodes-done')) ?? 0);
  let productsNow = (await tally(store, expected)).products.size;
  const limiter = new RateLimiter(demoLimiterOptions);
  const engine = createChainEngine({
    ...demoEngineOptions,
    // a node's lease: what was in flight at a kill is delivered again once it has ended
    leaseMs: LEASE_MS,
    modules: [shopModule(site.url)],
    store,
    rateLimit: limiter,
    onItem: async ({ itemId, item }) => {
      // the sink is idempotent by itemId: a hand-over repeated after a kill counts once
      if (!(await store.setNX(`demo:item:${itemId}`, '1'))) {
        await store.incr('demo:redelivered');
        return;
      }
      const it = item as ShopItem;
      if (it.kind === 'product') {
        if ((await store.incr(`demo:product:${it.id}`)) === 1) productsNow++;
      } else {
        await store.incr('demo:reviews');
        await store.set(`demo:reviewed:${it.productId}`, '1');
        if (!(await store.setNX(`demo:review:${it.productId}:${hash(it.text)}`, '1')))
          await store.incr('demo:duplicate-reviews');
      }
    },
  });
  engine.on('ParserTaskProduced', (e) => {
    if (e.source === 'retry') return;
    nodesSeen++;
    void store.incr('demo:nodes-seen');
  });
  engine.on('ModuleStepAdvanced', () => {
    nodesDone++;
    void store.incr('demo:nodes-done');
  });
  const draw = (): void => {
    const s = engine.stats();
    drawProgress(
      {
        products: productsNow,
        expected: expected.length,
        nodesDone,
        nodesSeen,
        downloads: s.downloads,
        downloadRetries: s.downloadRetries,
        retriesScheduled: s.retriesScheduled,
      },
      tty,
    );
  };

  console.log(
    stored
      ? `mocra demo: resuming the crawl in ${dataDir} (${productsNow} of ${expected.length} products ` +
          `so far); what was in flight at the interruption comes back within ${LEASE_MS / 1000} s`
      : `mocra demo: crawling ${site.url} (${expected.length} products), durable store in ${dataDir}` +
          ' — interrupt it (Ctrl-C or kill -9) and run the same command again to resume',
  );
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = performance.now();
  const ticker = setInterval(draw, tty ? 100 : 500);
  await engine.start();
  if (!stored) {
    await engine.submit({
      taskId: run.taskId,
      account: 'demo',
      platform: 'web',
      modules: ['shop'],
    });
  }
  const deadline = Date.now() + CRAWL_TIMEOUT_MS;
  let finished = false;
  while (!interrupted && Date.now() < deadline) {
    const idle = await Promise.race([
      engine.onIdle().then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 200)),
    ]);
    if (idle) {
      finished = true;
      break;
    }
  }
  clearInterval(ticker);
  draw();
  if (tty) process.stdout.write('\n');
  const wallMs = performance.now() - started;
  await engine.stop();
  if (interrupted) {
    console.log('interrupted: run the same command again to resume');
    await site.close();
    await store.close();
    return 130;
  }
  run.finished = finished;
  await store.set(RUN, JSON.stringify(run));
  const t = await tally(store, expected);
  printSummary([
    ...summaryRows({
      stats: engine.stats(),
      limiter: limiter.stats(),
      products: t.products.size,
      reviews: t.reviews,
      statuses: site.statuses,
      nodesSeen,
      wallMs,
    }).filter(([name]) => name !== 'nodes committed'),
    ['nodes committed (all lives)', `${nodesDone} of ${nodesSeen}`],
    ['items handed over again (all lives)', t.redelivered],
  ]);
  printCheck({ finished, expected: expected.length, ...t });
  await site.close();
  await store.close();
  return process.exitCode === 1 ? 1 : 0;
}
