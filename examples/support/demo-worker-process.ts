/**
 * One worker process of `npm run demo -- --workers N`, started by ./demo-workers.ts: the
 * examples' chain worker (./chain-worker.ts: RedisBackend state, Redis Stream queues, items
 * counted in Redis) with the demo's engine settings and one rate limit shared by every worker
 * through Redis.
 *
 * Its counters go to Redis as one JSON snapshot, `<prefix>demo:worker:<name>`, rewritten every
 * 100 ms and a last time after it stopped; the coordinator sums them for the progress and the
 * summary. Prints `ready` once it consumes. SIGTERM or SIGINT stops it gracefully (exit 0); so
 * does the end of its stdin (the coordinator is gone) and the end of its lifetime
 * (DEMO_WORKER_MAX_MS), so that it never outlives the demo.
 *
 * Env: REDIS_URL, SITE_URL, KEY_PREFIX, WORKER_NAME, DEMO_WORKER_MAX_MS.
 */
import { Redis } from 'ioredis';
import { RateLimiter, createCacheService } from 'mocra';
import { startChainWorker } from './chain-worker.js';
import {
  demoEngineOptions,
  demoLimiterOptions,
  snapshotKey,
  type WorkerSnapshot,
} from './demo-common.js';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`demo worker: ${name} is not set`);
  return value;
}

await main();

async function main(): Promise<void> {
  const redisUrl = env('REDIS_URL');
  const keyPrefix = env('KEY_PREFIX');
  const name = env('WORKER_NAME');
  const maxMs = Number(process.env.DEMO_WORKER_MAX_MS ?? 120_000);

  // one request budget for every worker: the limiter's buckets live in Redis
  const limiterStore = await createCacheService({ redis: redisUrl, keyPrefix });
  const limiter = new RateLimiter({ ...demoLimiterOptions, store: limiterStore });
  const worker = await startChainWorker({
    redisUrl,
    siteUrl: env('SITE_URL'),
    name,
    keyPrefix,
    engine: { ...demoEngineOptions, rateLimit: limiter, stopTimeoutMs: 5_000 },
    queues: { blockMs: 100 },
  });
  let nodesSeen = 0;
  let nodesDone = 0;
  worker.engine.on('ParserTaskProduced', (e) => {
    if (e.source !== 'retry') nodesSeen++;
  });
  worker.engine.on('ModuleStepAdvanced', () => nodesDone++);

  const client = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  const publish = (stopped: boolean): Promise<unknown> => {
    const l = limiter.stats();
    const snapshot: WorkerSnapshot = {
      name,
      pid: process.pid,
      stats: worker.engine.stats(),
      limiter: { waits: l.waits, totalWaitMs: l.totalWaitMs },
      nodesSeen,
      nodesDone,
      stopped,
    };
    // expires on its own if the coordinator could not clean up
    return client.set(snapshotKey(keyPrefix, name), JSON.stringify(snapshot), 'PX', 10 * 60_000);
  };
  await publish(false);
  let publishing = false;
  const ticker = setInterval(() => {
    if (publishing) return;
    publishing = true;
    publish(false)
      .catch(() => {})
      .finally(() => (publishing = false));
  }, 100);
  console.log('ready');

  const reason = await new Promise<string>((resolve) => {
    const lifetime = setTimeout(() => resolve('lifetime'), maxMs);
    const on = (why: string) => (): void => {
      clearTimeout(lifetime);
      resolve(why);
    };
    process.once('SIGTERM', on('SIGTERM')).once('SIGINT', on('SIGINT'));
    process.stdin.once('end', on('stdin closed')).once('error', on('stdin closed'));
    process.stdin.resume();
  });
  const stopping = Date.now();
  clearInterval(ticker);
  await worker.stop();
  await publish(true);
  await client.quit().catch(() => client.disconnect());
  await limiterStore.close();
  const s = worker.engine.stats();
  console.log(
    `worker ${name} stopped on ${reason} in ${Date.now() - stopping} ms: ` +
      `${nodesDone} nodes, ${s.items} items, ${s.deadLettered} dead-lettered`,
  );
  process.exit(0);
}
