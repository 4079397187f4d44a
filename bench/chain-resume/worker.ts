/**
 * One lifetime of a crawl for bench/chain-resume: CRAWLER=mocra (the chain engine on the
 * durable store in DATA_DIR) or CRAWLER=crawlee (Crawlee's HttpCrawler with its request queue
 * persisted in DATA_DIR, not purged on start). Both crawl the shop site at SITE_URL
 * (catalogue → list pages → product + reviews) and exit 0 when done; the parent kills one
 * lifetime with SIGKILL half-way and runs another on the same directory.
 */
import { shopModule } from '../../examples/support/shop-module.js';

const { CRAWLER, SITE_URL, DATA_DIR } = process.env;
const site = SITE_URL!;

if (CRAWLER === 'mocra') {
  const { DurableBackend, createChainEngine } = await import('../../src/index.js');
  const store = await DurableBackend.open({ path: DATA_DIR! });
  const engine = createChainEngine({
    modules: [shopModule(site)],
    store,
    concurrency: { parser: 16, download: 16 },
    leaseMs: 2_000,
    rateLimit: { global: false, perKey: { rate: 1_000_000, intervalMs: 1000, burst: 100_000 } },
    onItem: () => {},
  });
  await engine.start();
  if ((await store.setNX('bench:submitted', '1')) === true) {
    await engine.submit({ taskId: 'resume', account: 'bench', platform: 'web', modules: ['shop'] });
  }
  await engine.onIdle();
  await engine.stop();
  await store.close();
} else {
  const { Configuration, HttpCrawler, log } = await import('crawlee');
  log.setLevel(log.LEVELS.OFF);
  const config = new Configuration({
    storageClientOptions: { localDataDirectory: DATA_DIR!, persistStorage: true },
    purgeOnStart: false,
  });
  const crawler = new HttpCrawler(
    {
      maxConcurrency: 16,
      additionalMimeTypes: ['application/json'],
      maxRequestRetries: 3,
      requestHandler: async ({ request, body, addRequests }) => {
        const data = JSON.parse(body.toString()) as Record<string, unknown>;
        const path = new URL(request.url).pathname;
        if (path === '/catalogue') {
          const cats = data.categories as { id: string; pages: number }[];
          await addRequests(
            cats.flatMap((c) =>
              Array.from({ length: c.pages }, (_, i) => `${site}/category/${c.id}/page/${i + 1}`),
            ),
          );
        } else if (path.startsWith('/category/')) {
          const products = data.products as string[];
          await addRequests(
            products.flatMap((id) => [`${site}/product/${id}`, `${site}/product/${id}/reviews`]),
          );
        }
      },
    },
    config,
  );
  await crawler.run([`${site}/catalogue`]);
}
