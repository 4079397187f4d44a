/**
 * `npm run demo`: crawls a local test site with the task-chain engine, in one process, with no
 * Redis. The crawl is one module of three steps (examples/support/shop-module.ts):
 *
 *   catalogue → list pages → product detail + reviews
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
 */
import { startTestSite } from './support/test-site.js';
import { shopModule, type ShopItem } from './support/shop-module.js';
import { RateLimiter, createCacheService, createChainEngine } from '../src/index.js';

const smoke = process.env.MOCRA_EXAMPLE_SMOKE === '1';
const tty = process.stdout.isTTY === true;
const site = await startTestSite({
  categories: smoke ? 2 : 4,
  pagesPerCategory: 3,
  productsPerPage: smoke ? 4 : 6,
  flakyRatio: 0.15,
  flakyHits: 3, // one more than the download retries below: the node itself has to be retried
  slowRatio: 0.1,
  slowMs: 120,
  serverRatePerSec: 90,
});
const expected = site.expectedProducts();

const store = await createCacheService({
  ...(process.env.REDIS_URL ? { redis: process.env.REDIS_URL } : {}),
  keyPrefix: `mocra-demo:${Date.now()}:`,
});
// a little above the site's budget, so that its 429s show up
const limiter = new RateLimiter({
  global: { rate: 150, intervalMs: 1000, burst: 20 },
  perKey: false,
  jitterMs: 5,
  ...(store.mode === 'distributed' ? { store } : {}),
});

const products = new Map<string, number>();
const reviews = new Map<string, Set<string>>();
let duplicateReviews = 0;
let nodesSeen = 0;
let nodesDone = 0;

const engine = createChainEngine({
  modules: [shopModule(site.url)],
  store,
  rateLimit: limiter,
  concurrency: { parser: 16, publish: 8 },
  downloadRetry: { maxRetries: 2, initialDelayMs: 50, maxDelayMs: 500, maxRetryAfterMs: 1_000 },
  nodeRetry: { maxRetries: 5, initialDelayMs: 100, maxDelayMs: 1_000 },
  // the flaky pages make ~25 nodes fail once each; the threshold is for pages that stay broken
  moduleErrorThreshold: 100,
  taskErrorThreshold: 200,
  retryPollMs: 10,
  stateTtlMs: 10 * 60_000,
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
engine.on('ModuleStepAdvanced', () => nodesDone++);

// progress: redrawn in place on a terminal, a plain line every half second otherwise
function progress(): string {
  const s = engine.stats();
  return (
    `${products.size}/${expected.length} products, ${nodesDone}/${nodesSeen} nodes, ` +
    `${s.downloads} requests, ${s.downloadRetries} download retries, ` +
    `${s.retriesScheduled} node retries`
  );
}
function draw(): void {
  if (tty) {
    const width = 30;
    const filled = Math.min(width, Math.round((products.size / expected.length) * width));
    const line = `  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${progress()}`;
    // never wider than the terminal: a wrapped line cannot be redrawn in place
    process.stdout.write(`\r\x1b[K${line.slice(0, (process.stdout.columns || 120) - 1)}`);
  } else {
    console.log(`  ${progress()}`);
  }
}

console.log(
  `mocra demo: crawling ${site.url} (${expected.length} products) with the chain engine, ` +
    `${engine.runtimeMode} mode, ${store.mode === 'distributed' ? 'Redis' : 'in-process'} store`,
);
const started = performance.now();
const ticker = setInterval(draw, tty ? 100 : 500);
await engine.start();
await engine.submit({
  taskId: `demo-${Date.now()}`,
  account: 'demo',
  platform: 'web',
  modules: ['shop'],
});

// bounded in time: a crawl that has not finished in 60 s is a failure, not a hang
let timer: ReturnType<typeof setTimeout> | undefined;
const finished = await Promise.race([
  engine.onIdle().then(() => true),
  new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 60_000))),
]);
clearTimeout(timer);
clearInterval(ticker);
draw();
if (tty) process.stdout.write('\n');
const wallMs = performance.now() - started;
await engine.stop();

const s = engine.stats();
const l = limiter.stats();
const reviewCount = [...reviews.values()].reduce((n, set) => n + set.size, 0);
const missing = expected.filter((id) => !products.has(id));
const twice = [...products].filter(([, n]) => n > 1).map(([id]) => id);
const unknown = [...products.keys()].filter((id) => !expected.includes(id));
const withoutReviews = expected.filter((id) => !reviews.has(id));
const ok =
  finished &&
  missing.length === 0 &&
  twice.length === 0 &&
  unknown.length === 0 &&
  withoutReviews.length === 0 &&
  duplicateReviews === 0;
const statuses = [...site.statuses]
  .sort(([a], [b]) => a - b)
  .map(([code, n]) => `${n}×${code}`)
  .join(', ');

const rows: [string, string | number][] = [
  ['items', `${s.items} (${products.size} products, ${reviewCount} reviews)`],
  ['requests (downloads)', s.downloads],
  ['server answers', statuses],
  ['download retries (503, 429)', s.downloadRetries],
  ['node retries (ErrorTaskModels)', `${s.retriesScheduled} (${s.nodesGivenUp} nodes given up)`],
  ['rate-limit waits', `${l.waits} (${Math.round(l.totalWaitMs)} ms in all)`],
  ['fallbacks', `${s.fallbacks} (${s.fallbacksRefused} refused)`],
  ['modules terminated', s.modulesTerminated],
  ['nodes committed', `${s.commits.COMMIT_OK ?? 0} of ${nodesSeen}`],
  ['wall time', `${(wallMs / 1000).toFixed(2)} s`],
];
console.log('\nsummary');
for (const [name, value] of rows) console.log(`  ${name.padEnd(32)} ${value}`);
if (ok) {
  console.log(`  check: all ${expected.length} products produced exactly once, each with reviews`);
} else {
  console.log(
    `  check FAILED: ${finished ? '' : 'not finished within 60 s; '}` +
      `${missing.length} missing, ${twice.length} produced twice, ${unknown.length} unexpected, ` +
      `${withoutReviews.length} without reviews, ${duplicateReviews} duplicate reviews`,
  );
  if (missing.length > 0) console.log(`  missing: ${missing.join(', ')}`);
  if (twice.length > 0) console.log(`  twice: ${twice.join(', ')}`);
  process.exitCode = 1;
}

if (store.mode === 'distributed') {
  // the key prefix is this run's own: leave nothing behind
  for await (const key of store.scan('')) await store.del(key);
}
await store.close();
await site.close();
