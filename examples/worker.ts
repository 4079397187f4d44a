/**
 * A chain-engine worker you can start N times: every worker shares the chain state and the work
 * queues (Redis Streams, one consumer group) through one Redis, and each node of the crawl is
 * run by one of them, exactly once. SIGTERM or SIGINT stops a worker gracefully: it stops
 * reading, finishes (or hands back) what it holds, closes its connections and exits 0.
 *
 *   npx tsx examples/worker.ts --site                         # serve the local test site; prints its URL
 *   SITE_URL=http://127.0.0.1:PORT npx tsx examples/worker.ts w1    # start as many as you like
 *   SITE_URL=http://127.0.0.1:PORT npx tsx examples/worker.ts w2
 *   SITE_URL=http://127.0.0.1:PORT npx tsx examples/worker.ts --submit daily-1
 *   redis-cli --scan --pattern 'mocra-worker:out:*'            # the items, one key each
 *
 * Environment: REDIS_URL (default redis://127.0.0.1:6379), SITE_URL, WORKER_NAME (or the first
 * argument; default host-pid), KEY_PREFIX (default 'mocra-worker:').
 *
 * Under `npm run examples` (MOCRA_EXAMPLE_SMOKE=1) it runs a bounded self-check instead: a private
 * redis-server on a free loopback port (or REDIS_URL), the local test site, two workers in this
 * process, one crawl, every product exactly once, a graceful stop. Without Redis it says so and
 * exits 0, except under CI=true, where that is a failure.
 */
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { startChainWorker, submitCrawl } from './support/chain-worker.js';
import { deleteKeys, isCi, privateRedis } from './support/private-redis.js';
import { startTestSite } from './support/test-site.js';

const args = process.argv.slice(2);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const keyPrefix = process.env.KEY_PREFIX ?? 'mocra-worker:';

if (process.env.MOCRA_EXAMPLE_SMOKE === '1') {
  await selfCheck();
} else if (args[0] === '--site') {
  const site = await startTestSite({ flakyRatio: 0.1, slowRatio: 0.1, serverRatePerSec: 200 });
  console.log(`SITE_URL=${site.url}`);
  await untilSignal();
  await site.close();
} else if (args[0] === '--submit') {
  const taskId = args[1] ?? `crawl-${Date.now()}`;
  await submitCrawl({ redisUrl, siteUrl: requireSite(), keyPrefix }, taskId);
  console.log(`submitted task ${taskId}`);
} else {
  const name = process.env.WORKER_NAME ?? args[0] ?? `${hostname()}-${process.pid}`;
  const worker = await startChainWorker({ redisUrl, siteUrl: requireSite(), name, keyPrefix });
  console.log(`worker ${name} started (${worker.engine.runtimeMode}, ${redisUrl})`);
  const signal = await untilSignal();
  const started = Date.now();
  await worker.stop();
  const s = worker.engine.stats();
  console.log(
    `worker ${name} stopped on ${signal} in ${Date.now() - started} ms: ` +
      `${s.received.parser} nodes received, ${s.commits.COMMIT_OK ?? 0} committed, ` +
      `${s.items} items, ${s.deadLettered} dead-lettered`,
  );
}

function requireSite(): string {
  const site = process.env.SITE_URL;
  if (!site) {
    console.error('SITE_URL is not set (start a site with: npx tsx examples/worker.ts --site)');
    process.exit(2);
  }
  return site;
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => {}, 1 << 30); // a worker idles between messages
    const on = (signal: NodeJS.Signals): void => {
      clearInterval(keepAlive);
      process.off('SIGTERM', on).off('SIGINT', on);
      resolve(signal);
    };
    process.on('SIGTERM', on).on('SIGINT', on);
  });
}

async function selfCheck(): Promise<void> {
  const redis = process.env.REDIS_URL ? null : await privateRedis();
  const url = process.env.REDIS_URL ?? redis?.url;
  if (!url) {
    const message = 'worker.ts self-check needs Redis (REDIS_URL or a redis-server binary)';
    if (isCi()) throw new Error(message);
    console.log(`skipped: ${message}`);
    return;
  }
  const site = await startTestSite({ categories: 2, pagesPerCategory: 2, productsPerPage: 3 });
  // one namespace (no `:` inside: the stores would escape it, and the raw reads below would miss)
  const prefix = `mocra-worker-check-${process.pid}-${Date.now()}:`;
  const common = {
    redisUrl: url,
    siteUrl: site.url,
    keyPrefix: prefix,
    engine: { nodeRetry: { initialDelayMs: 10, maxDelayMs: 100 }, retryPollMs: 10 },
    queues: { blockMs: 100 },
  };
  const workers = [
    await startChainWorker({ ...common, name: 'check-a' }),
    await startChainWorker({ ...common, name: 'check-b' }),
  ];
  const client = new Redis(url);
  try {
    await submitCrawl(common, 'check');
    const expected = site.expectedProducts();
    const deadline = Date.now() + 30_000;
    let counts: number[] = [];
    for (;;) {
      const keys = expected.map((id) => `${prefix}out:check:item:product:${id}`);
      counts = (await client.mget(...keys)).map(Number);
      if (counts.every((c) => c >= 1)) break;
      if (Date.now() > deadline) throw new Error('self-check: not every product within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.all(workers.map((w) => w.stop()));
    if (counts.some((c) => c !== 1)) throw new Error('self-check: a product was produced twice');
    const commits = workers.map((w) => w.engine.stats().commits.COMMIT_OK ?? 0);
    console.log(
      `self-check ok: ${expected.length} products once each, nodes committed per worker ${commits.join(' / ')}`,
    );
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await deleteKeys(client, prefix);
    client.disconnect();
    await site.close();
    await redis?.stop();
  }
}
