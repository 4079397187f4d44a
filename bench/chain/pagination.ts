/**
 * bench/chain/pagination: the same paginated crawl with mocra and with Crawlee (`crawlee`,
 * a devDependency): a list of unknown length on the local test site (`/feed/1` … `/feed/N`, each
 * page linking to the next, two items per page), followed page by page. Both de-duplicate by
 * the page path (mocra: a route key; Crawlee: the request's uniqueKey), both run in one process
 * with in-memory state, retries on, over loopback HTTP keep-alive.
 *
 *   node --expose-gc --import tsx bench/chain/pagination.ts
 *
 * Throughput: pages per second of wall time per round, median of the rounds. A pagination is a
 * chain (page n+1 is known only once page n is parsed), so this measures the per-page latency
 * of each framework: request, parse, hand-off to the next page. BENCH_ROUNDS and
 * BENCH_FEED_PAGES size it.
 */
import { loadavg } from 'node:os';
import { Configuration, HttpCrawler, MemoryStorage, log } from 'crawlee';
import {
  createChainEngine,
  defineModule,
  LocalBackend,
  type StepContext,
} from '../../src/index.js';
import { startTestSite } from '../../examples/support/test-site.js';
import { compareThroughput, printCase, writeResults } from '../lib/harness.js';

log.setLevel(log.LEVELS.OFF);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const warmup = 1;
const PAGES = Number(process.env.BENCH_FEED_PAGES ?? 200);

const site = await startTestSite({
  feedPages: PAGES,
  flakyRatio: 0,
  slowRatio: 0,
  serverRatePerSec: 1_000_000,
});

interface FeedPage {
  products: string[];
  next: string | null;
}

const feed = defineModule({
  id: 'feed',
  steps: [
    {
      name: 'page',
      generate: (ctx: StepContext<string | undefined>) => [
        { url: `${site.url}${ctx.input ?? '/feed/1'}` },
      ],
      parse: (response) => {
        const page = JSON.parse(response.body) as FeedPage;
        return {
          items: page.products,
          route: page.next === null ? [] : [{ step: 'page', input: page.next, key: page.next }],
        };
      },
    },
  ],
});

let taskSeq = 0;
async function mocraRound(): Promise<number> {
  const items = new Set<string>();
  const store = new LocalBackend();
  const engine = createChainEngine({
    modules: [feed],
    store,
    rateLimit: { global: false, perKey: { rate: 1_000_000, intervalMs: 1000, burst: 100_000 } },
    onItem: ({ item }) => {
      items.add(item);
    },
  });
  await engine.start();
  await engine.submit({
    taskId: `feed-${++taskSeq}`,
    account: 'b',
    platform: 'web',
    modules: ['feed'],
  });
  await engine.onIdle();
  await engine.stop();
  await store.close();
  const committed = engine.stats().commits.COMMIT_OK ?? 0;
  if (committed !== PAGES || items.size !== 2 * PAGES)
    throw new Error(
      `mocra: ${committed} pages, ${items.size} items (expected ${PAGES}, ${2 * PAGES})`,
    );
  return PAGES;
}

async function crawleeRound(): Promise<number> {
  const items = new Set<string>();
  let pages = 0;
  const config = new Configuration({
    storageClient: new MemoryStorage({ persistStorage: false, writeMetadata: false }),
    persistStorage: false,
    logLevel: 0 as never,
  });
  const crawler = new HttpCrawler(
    {
      maxConcurrency: 16,
      maxRequestRetries: 3,
      additionalMimeTypes: ['application/json'],
      async requestHandler({ body, crawler: self }) {
        const page = JSON.parse(body.toString()) as FeedPage;
        pages++;
        for (const p of page.products) items.add(p);
        if (page.next !== null)
          await self.addRequests([{ url: site.url + page.next, uniqueKey: page.next }]);
      },
    },
    config,
  );
  await crawler.run([{ url: `${site.url}/feed/1`, uniqueKey: '/feed/1' }]);
  if (pages !== PAGES || items.size !== 2 * PAGES)
    throw new Error(
      `crawlee: ${pages} pages, ${items.size} items (expected ${PAGES}, ${2 * PAGES})`,
    );
  return PAGES;
}

const loadStart = Number(loadavg()[0]!.toFixed(2));
try {
  const result = await compareThroughput(
    `paginated crawl of unknown length, ${PAGES} pages (each links to the next) per round`,
    [
      { name: 'mocra (route to the same step, keyed)', round: mocraRound },
      { name: 'Crawlee HttpCrawler', round: crawleeRound },
    ],
    { rounds, warmup },
  );
  result.unit = 'pages/s';
  printCase(result);
  const notes = {
    peer: 'Crawlee 3 (HttpCrawler, in-memory storage, maxConcurrency 16)',
    setup:
      'one process, loopback HTTP keep-alive, no faults, server budget 1,000,000/s; mocra: ' +
      'LocalBackend and in-memory queues, a new engine per round; Crawlee: a new crawler and a ' +
      'new in-memory storage per round',
    'pages per round': PAGES,
    'load average (1 min) at start': loadStart,
    'load average (1 min) at end': Number(loadavg()[0]!.toFixed(2)),
  };
  console.log(`\nwrote ${writeResults('chain-pagination', [result], notes)}`);
} finally {
  await site.close();
}
