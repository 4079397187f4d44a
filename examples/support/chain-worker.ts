/**
 * One worker of a distributed crawl: the shop module (./shop-module.ts) on a chain engine whose
 * state is a RedisBackend and whose queues are Redis Streams shared by every worker. Used by
 * examples/worker.ts (the command line) and by the multi-process integration test.
 *
 * Items: the engine hands each item to exactly one worker's `onItem`, so the sink must be shared
 * too. Here it is Redis: `INCR <prefix>out:<taskId>:item:<kind>:<id>` per item (a count above 1
 * would be a duplicate) and `INCR <prefix>out:work:<worker>` per committed node.
 */
import { Redis } from 'ioredis';
import {
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  type ChainEngine,
  type ChainEngineOptions,
  type ChainItem,
  type RedisStreamQueues,
  type RedisStreamQueuesOptions,
} from 'mocra';
import { shopModule, type ShopItem } from './shop-module.js';

export interface ChainWorkerOptions {
  /** The Redis every worker shares. */
  redisUrl: string;
  /** Base URL of the site to crawl. */
  siteUrl: string;
  /** This worker's name: its consumer name in the group and its lease owner; unique per process. */
  name: string;
  /** Namespace of the deployment in Redis (state, streams, output). */
  keyPrefix: string;
  /** Engine tunables (tests make retries fast). */
  engine?: Omit<ChainEngineOptions, 'modules' | 'store' | 'queues' | 'onItem' | 'workerId'>;
  /** Queue tunables. */
  queues?: Omit<RedisStreamQueuesOptions, 'client' | 'keyPrefix' | 'consumer'>;
}

export interface ChainWorker {
  readonly engine: ChainEngine;
  readonly store: RedisBackend;
  readonly queues: RedisStreamQueues;
  /** Stops reading, finishes or releases in-flight work, closes every connection. Idempotent. */
  stop(): Promise<void>;
}

/** The output key of an item, one per product and one per review. */
export function itemKey(item: ShopItem): string {
  return item.kind === 'product' ? `product:${item.id}` : `review:${item.productId}:${item.text}`;
}

/** Creates the pieces every worker (and a submitter) shares: store, queues, engine. */
function connect(o: ChainWorkerOptions): {
  client: Redis;
  store: RedisBackend;
  queues: RedisStreamQueues;
  engine: ChainEngine;
} {
  const store = new RedisBackend({ redis: o.redisUrl, keyPrefix: o.keyPrefix });
  // the queues' own connection: blocking reads are on duplicates of it
  const client = new Redis(o.redisUrl, { maxRetriesPerRequest: 2 });
  const queues = createRedisStreamQueues({
    ...o.queues,
    client,
    keyPrefix: o.keyPrefix,
    consumer: o.name,
  });
  const engine = createChainEngine({
    ...o.engine,
    modules: [shopModule(o.siteUrl)],
    store,
    queues,
    workerId: o.name,
    onItem: async (entry: ChainItem) => {
      await store.incr(`out:${entry.taskId}:item:${itemKey(entry.item as ShopItem)}`);
    },
  });
  engine.on('ModuleStepAdvanced', () => {
    void store.incr(`out:work:${o.name}`).catch(() => {});
  });
  return { client, store, queues, engine };
}

async function close(parts: ReturnType<typeof connect>): Promise<void> {
  await parts.engine.stop();
  await Promise.all([
    parts.queues.task.shutdown(),
    parts.queues.parser.shutdown(),
    parts.queues.error.shutdown(),
  ]);
  await parts.store.close();
  await parts.client.quit().catch(() => parts.client.disconnect());
}

/** Starts a worker; it runs until `stop()`. */
export async function startChainWorker(o: ChainWorkerOptions): Promise<ChainWorker> {
  const parts = connect(o);
  await parts.store.connect();
  await parts.engine.start();
  let stopping: Promise<void> | undefined;
  return {
    engine: parts.engine,
    store: parts.store,
    queues: parts.queues,
    stop: () => (stopping ??= close(parts)),
  };
}

/** Submits one crawl of the shop module as task `taskId`; any worker picks it up. */
export async function submitCrawl(
  o: Omit<ChainWorkerOptions, 'name'> & { name?: string },
  taskId: string,
): Promise<string> {
  const parts = connect({ ...o, name: o.name ?? `submit-${process.pid}` });
  try {
    await parts.store.connect();
    const { runId } = await parts.engine.submit({
      taskId,
      account: 'demo',
      platform: 'web',
      modules: ['shop'],
    });
    return runId;
  } finally {
    await close(parts);
  }
}
