/**
 * `npm run demo`: crawls a local test site (catalogue → list pages → products → reviews; some
 * endpoints slow, some answering 503, and a server-side limit answering 429 with Retry-After)
 * in one process, with no Redis: a TaskScheduler bounds concurrency and orders work by
 * priority, a RateLimiter keeps us under the site's budget, and the in-process CacheService
 * makes each product count once. Ends with a summary table.
 *
 * With REDIS_URL set, the store and the rate limiter run on Redis instead (one budget and one
 * dedupe set for every process that runs this).
 */
import { startTestSite } from './support/test-site.js';
import { RateLimiter, createCacheService, createScheduler, isMocraError } from '../src/index.js';

const smoke = process.env.MOCRA_EXAMPLE_SMOKE === '1';
const site = await startTestSite({
  categories: smoke ? 2 : 4,
  pagesPerCategory: 3,
  productsPerPage: smoke ? 4 : 6,
  flakyRatio: 0.15,
  slowRatio: 0.1,
  slowMs: 120,
  serverRatePerSec: 90,
});
const store = await createCacheService({
  ...(process.env.REDIS_URL ? { redis: process.env.REDIS_URL } : {}),
  keyPrefix: `demo:${Date.now()}:`,
});
const limiter = new RateLimiter({
  global: { rate: 120, intervalMs: 1000, burst: 20 },
  perKey: false,
  jitterMs: 5,
  ...(store.mode === 'distributed' ? { store } : {}),
});
const scheduler = createScheduler({
  maxConcurrent: 12,
  queueCapacity: Infinity,
  rateLimiter: limiter,
});

const stats = {
  requests: 0,
  retries: 0,
  rateLimited429: 0,
  unavailable503: 0,
  items: 0,
  duplicates: 0,
};
const items: { id: string; name: string; price: number; reviews: number }[] = [];
const started = performance.now();

/** GET with retries on 503/429/network errors; honours Retry-After; every attempt is rate limited. */
async function get<T>(path: string, signal: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    stats.requests++;
    let wait = Math.min(50 * 2 ** attempt, 2_000) * (0.8 + Math.random() * 0.4);
    try {
      const response = await fetch(site.url + path, { signal });
      if (response.ok) return (await response.json()) as T;
      await response.body?.cancel();
      if (response.status === 429) {
        stats.rateLimited429++;
        wait = Math.max(wait, Number(response.headers.get('retry-after') ?? 1) * 1000);
      } else if (response.status === 503) stats.unavailable503++;
      else throw new Error(`GET ${path}: HTTP ${response.status}`);
    } catch (error) {
      if (signal.aborted || (error as Error).message.startsWith('GET ')) throw error;
    }
    if (attempt > 5) throw new Error(`GET ${path}: gave up after ${attempt} attempts`);
    stats.retries++;
    await new Promise((resolve) => setTimeout(resolve, wait));
    // each retry waits for the rate limiter again
    await limiter.acquire('default', { signal });
  }
}

// Tasks never await the tasks they create (a parent holding its slot while its children wait
// for one would deadlock the scheduler); they enqueue children and return. Failures are
// collected; `scheduler.onIdle()` says when everything is done.
const failures: unknown[] = [];
const record = (p: Promise<unknown>): void =>
  void p.catch((error: unknown) => failures.push(error));

// step 3: a product and its reviews → one item, counted once even if listed twice
const crawlProduct = (id: string): void =>
  record(
    scheduler.run(
      async ({ signal }) => {
        if (!(await store.setNX(`seen:${id}`, '1', { ttlMs: 3_600_000 }))) {
          stats.duplicates++;
          return;
        }
        const product = await get<{ id: string; name: string; price: number }>(
          `/product/${id}`,
          signal,
        );
        const reviews = await get<{ reviews: unknown[] }>(`/product/${id}/reviews`, signal);
        items.push({ ...product, reviews: reviews.reviews.length });
        stats.items++;
        render();
      },
      { priority: 'high', timeoutMs: 30_000 },
    ),
  );

// step 2: a list page → its products
const crawlList = (category: string, page: number): void =>
  record(
    scheduler.run(
      async ({ signal }) => {
        const list = await get<{ products: string[] }>(
          `/category/${category}/page/${page}`,
          signal,
        );
        list.products.forEach(crawlProduct);
      },
      { priority: 'normal', timeoutMs: 30_000 },
    ),
  );

// progress: a bar on a terminal, a few plain lines otherwise
const expected = site.expectedProducts().length;
let lastQuarter = -1;
function render(): void {
  const done = stats.items;
  if (process.stdout.isTTY) {
    const width = 30;
    const filled = Math.round((done / expected) * width);
    process.stdout.write(
      `\r  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${expected} items, ` +
        `${stats.requests} requests, ${stats.retries} retries `,
    );
  } else {
    const quarter = Math.floor((done / expected) * 4);
    if (quarter > lastQuarter) {
      lastQuarter = quarter;
      console.log(
        `  ${done}/${expected} items, ${stats.requests} requests, ${stats.retries} retries`,
      );
    }
  }
}

console.log(`mocra demo: crawling ${site.url} (${expected} products) in ${store.mode} mode`);
// step 1: the catalogue → every list page
record(
  scheduler.run(async ({ signal }) => {
    const catalogue = await get<{ categories: { id: string; pages: number }[] }>(
      '/catalogue',
      signal,
    );
    for (const c of catalogue.categories)
      for (let page = 1; page <= c.pages; page++) crawlList(c.id, page);
  }),
);
await scheduler.onIdle();
if (process.stdout.isTTY) process.stdout.write('\n');
for (const error of failures) {
  console.error('task failed:', isMocraError(error) ? `${error.code}: ${error.message}` : error);
}

const wallMs = performance.now() - started;
const missing = site.expectedProducts().filter((id) => !items.some((item) => item.id === id));
const s = scheduler.stats();
const l = limiter.stats();
const rows: [string, string | number][] = [
  ['items', `${stats.items} of ${expected}`],
  ['duplicate items', stats.duplicates],
  ['requests', stats.requests],
  ['retries (503, 429, network)', stats.retries],
  ['503 answers', stats.unavailable503],
  ['429 answers (Retry-After honoured)', stats.rateLimited429],
  ['rate-limit waits', `${l.waits} (${Math.round(l.totalWaitMs)} ms in all)`],
  [
    'scheduler tasks',
    `${s.succeeded} ok, ${s.failed} failed, peak wait ${Math.round(s.maxWaitMs)} ms`,
  ],
  ['wall time', `${(wallMs / 1000).toFixed(2)} s`],
];
console.log('\nsummary');
for (const [name, value] of rows) console.log(`  ${name.padEnd(36)} ${value}`);

await store.close();
await site.close();
if (missing.length > 0 || stats.items !== expected || failures.length > 0) {
  console.error(`missing items: ${missing.join(', ')}`);
  process.exitCode = 1;
}
