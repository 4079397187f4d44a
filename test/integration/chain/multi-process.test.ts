/**
 * The chain engine on four worker processes sharing one private Redis (state + Redis Stream
 * queues), crawling the local test site with its faults on (flaky 503s, server-side 429s):
 * every item of the single-node run is produced, each exactly once, all four workers take part,
 * nothing is dead-lettered, and SIGTERM stops each worker gracefully with exit code 0.
 *
 * What this does not prove: behaviour when a worker is killed mid-node (crash/chaos testing is
 * a later step; see docs/chain.md "Running on many processes").
 */
import { startWorkerProcess, type WorkerProcess } from '../../helpers/worker-process.js';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChainEngine, type ChainEngineStats } from '../../../src/index.js';
import { itemKey, submitCrawl } from '../../../examples/support/chain-worker.js';
import { shopModule, type ShopItem } from '../../../examples/support/shop-module.js';
import { startTestSite, type TestSite } from '../../../examples/support/test-site.js';
import {
  redisServerBinary,
  startRedisServer,
  type RedisServer,
} from '../../helpers/redis-server.js';

const WORKERS = 4;
const PREFIX = 'mp:';
const TASK = 'crawl-1';
const FIXTURE = join(import.meta.dirname, 'fixtures', 'chain-worker.ts');
const SITE = {
  categories: 3,
  pagesPerCategory: 4,
  productsPerPage: 5,
  flakyRatio: 0.25,
  flakyHits: 1,
  slowRatio: 0.1,
  slowMs: 20,
  serverRatePerSec: 80,
};
const ci = process.env.CI === 'true' || process.env.CI === '1';

const startWorker = (name: string, env: Record<string, string>): WorkerProcess =>
  startWorkerProcess(FIXTURE, name, env);

async function until(what: string, condition: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function scanAll(client: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out;
}

describe.skipIf(!redisServerBinary() && !ci)('chain engine on 4 worker processes', () => {
  let redis: RedisServer;
  let client: Redis;
  let site: TestSite;
  let reference: string[];
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    // the single-node run: same module, same site content (its own site, so its faults are fresh)
    const refSite = await startTestSite(SITE);
    const produced: string[] = [];
    const engine = createChainEngine({
      modules: [shopModule(refSite.url)],
      rateLimit: { global: false, perKey: { rate: 2000, intervalMs: 1000, burst: 200 } },
      downloadRetry: { maxRetries: 4, initialDelayMs: 5, maxDelayMs: 50, maxRetryAfterMs: 200 },
      nodeRetry: { maxRetries: 8, initialDelayMs: 20, maxDelayMs: 400, jitter: 0.2 },
      retryPollMs: 10,
      onItem: (i) => void produced.push(itemKey(i.item as ShopItem)),
    });
    await engine.start();
    await engine.submit({ taskId: TASK, account: 'demo', platform: 'web', modules: ['shop'] });
    await engine.onIdle();
    await engine.stop();
    await refSite.close();
    reference = produced.sort();

    redis = await startRedisServer();
    client = new Redis(redis.url);
    site = await startTestSite(SITE);
  });

  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    client?.disconnect();
    await site?.close();
    await redis?.stop();
  });

  it('produces every item of the single-node run exactly once, with all four workers busy', async () => {
    const started = Date.now();
    const sortedProducts = site.expectedProducts();
    expect(reference.filter((k) => k.startsWith('product:'))).toEqual(
      sortedProducts.map((id) => `product:${id}`),
    );
    expect(new Set(reference).size).toBe(reference.length);

    const env = { REDIS_URL: redis.url, SITE_URL: site.url, KEY_PREFIX: PREFIX };
    for (let i = 1; i <= WORKERS; i++) workers.push(startWorker(`w${i}`, env));
    await until(
      'every worker ready',
      async () => workers.every((w) => w.stdout.includes('ready')),
      30_000,
    ).catch((error: unknown) => {
      throw new Error(
        `${(error as Error).message}\n${workers.map((w) => `${w.name}: ${w.stderr}`).join('\n')}`,
      );
    });

    await submitCrawl({ redisUrl: redis.url, siteUrl: site.url, keyPrefix: PREFIX }, TASK);

    const itemPattern = `${PREFIX}out:${TASK}:item:*`;
    const streams = ['task', 'parser', 'error'].map((q) => `${PREFIX}chain:queue:${q}`);
    // done: every expected item is there and no message is left in any stream
    await until(
      'every item and empty streams',
      async () => {
        const keys = await scanAll(client, itemPattern);
        if (keys.length < reference.length) return false;
        const lengths = await Promise.all(streams.map((s) => client.xlen(s)));
        return lengths.every((n) => n === 0);
      },
      40_000,
    );
    const keys = (await scanAll(client, itemPattern)).sort();
    const counts = await client.mget(...keys);
    const produced = keys.map((k) => k.slice(`${PREFIX}out:${TASK}:item:`.length));
    expect(produced).toEqual(reference);
    const duplicates = produced.filter((_, i) => counts[i] !== '1');
    expect(duplicates).toEqual([]);

    // every worker committed nodes
    for (const w of workers) {
      expect(Number(await client.get(`${PREFIX}out:work:${w.name}`)), w.name).toBeGreaterThan(0);
    }
    // nothing was dead-lettered, durably or otherwise
    for (const q of ['task', 'parser', 'error'])
      expect(await client.xlen(`${PREFIX}chain:queue:${q}:dead`), q).toBe(0);
    // the site's faults did happen
    expect(site.statuses.get(503) ?? 0).toBeGreaterThan(0);

    // graceful stop: SIGTERM → exit 0, promptly
    const stopping = Date.now();
    for (const w of workers) w.child.kill('SIGTERM');
    const exits = await Promise.all(workers.map((w) => w.exited));
    const stopMs = Date.now() - stopping;
    expect(exits, workers.map((w) => w.stderr).join('\n')).toEqual(
      workers.map(() => ({ code: 0, signal: null })),
    );
    expect(stopMs).toBeLessThan(10_000);
    const stats = workers.map((w) => {
      const line = w.stdout.trim().split('\n').pop()!;
      return (JSON.parse(line) as { stats: ChainEngineStats }).stats;
    });
    for (const s of stats) {
      expect(s.runtimeMode).toBe('distributed');
      expect(s.deadLettered).toBe(0);
      expect(s.received.parser).toBeGreaterThan(0);
    }
    const committed = stats.reduce((n, s) => n + (s.commits.COMMIT_OK ?? 0), 0);
    // one commit per node: 1 catalogue + 12 list pages + 60 products
    expect(committed).toBe(1 + 12 + 60);
    // the workers left the consumer group
    const consumers = (await client.xinfo('CONSUMERS', streams[1]!, 'mocra-chain')) as unknown[];
    expect(consumers).toHaveLength(0);
    console.log(
      `multi-process: ${reference.length} items in ${stopping - started} ms, stop in ${stopMs} ms, ` +
        `nodes committed per worker ${stats.map((s) => s.commits.COMMIT_OK ?? 0).join('/')}, ` +
        `site 503s ${site.statuses.get(503) ?? 0}, 429s ${site.statuses.get(429) ?? 0}`,
    );
  }, 60_000);
});
