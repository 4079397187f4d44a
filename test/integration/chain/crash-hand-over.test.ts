/**
 * What a crash leaves behind, with a worker process killed by SIGKILL (fixtures/crash-worker.ts)
 * on a private Redis:
 *
 * - Items go out as their nodes commit: a crawl killed halfway has handed over the items of the
 *   nodes it committed, all but those of the last few commits (the in-flight window: commits
 *   whose outbox entries the relay had not taken yet, see docs/chain.md "Items"). An ordering
 *   test, not a timed one: it reads the order of the events the worker printed.
 * - A restart never ends idle with work missing: with in-memory queues over the Redis store
 *   (`allowVolatileQueues`), a worker killed after its nodes were relayed to its queue but before
 *   they were claimed loses those messages; a new worker started on the same store, which submits
 *   nothing, finds them through the state and finishes the crawl with every item.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSite, type TestSite } from '../../../examples/support/test-site.js';
import {
  redisServerBinary,
  startRedisServer,
  type RedisServer,
} from '../../helpers/redis-server.js';
import { startWorkerProcess, type WorkerProcess } from '../../helpers/worker-process.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'crash-worker.ts');
/** Parser concurrency of the killed worker in the hand-over test. */
const PARSER = 16;
/**
 * The in-flight window: nodes committed last whose items may not be out when the process dies.
 * A commit kicks the relay at once; what can be missing is what was committed while the relay's
 * current take was in flight — at most the commits in progress at once (the parser concurrency),
 * twice over for the take that was being answered.
 */
const WINDOW = 2 * PARSER;
const PRODUCT_STEP = 2;

interface Event {
  e: 'produced' | 'commit' | 'item' | 'idle';
  node?: string;
  step?: number;
  kind?: string;
  product?: string;
  stats?: { commits: Record<string, number> };
}

function events(worker: WorkerProcess): Event[] {
  return worker.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Event);
}

async function until(what: string, worker: WorkerProcess, done: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!done()) {
    if (worker.child.exitCode !== null)
      throw new Error(`${worker.name} exited before ${what}:\n${worker.stderr}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${worker.stderr}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.skipIf(redisServerBinary() === null)('a crawl killed with SIGKILL', () => {
  let server: RedisServer;
  let site: TestSite;
  const workers: WorkerProcess[] = [];
  let prefixNo = 0;

  beforeAll(async () => {
    server = await startRedisServer();
    site = await startTestSite({
      categories: 4,
      pagesPerCategory: 5,
      productsPerPage: 10,
      flakyRatio: 0,
      slowRatio: 0.3,
      slowMs: 30,
      serverRatePerSec: 1_000_000,
    });
  });
  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await site?.close();
    await server?.stop();
  });

  const start = (name: string, env: Record<string, string>): WorkerProcess => {
    const worker = startWorkerProcess(FIXTURE, name, {
      REDIS_URL: server.url,
      SITE_URL: site.url,
      ...env,
    });
    workers.push(worker);
    return worker;
  };

  it('has handed over the items of the nodes it committed, all but the in-flight window', async () => {
    const worker = start('hand-over', {
      KEY_PREFIX: `crash-${++prefixNo}:`,
      QUEUES: 'default',
      SUBMIT: '1',
      PARSER: String(PARSER),
    });
    const half = site.expectedProducts().length / 2;
    await until('half the product nodes committed', worker, () => {
      return (
        events(worker).filter((e) => e.e === 'commit' && e.step === PRODUCT_STEP).length >= half
      );
    });
    worker.child.kill('SIGKILL');
    await worker.exited;

    const seen = events(worker);
    const committed = seen.filter((e) => e.e === 'commit' && e.step === PRODUCT_STEP);
    const handed = new Set(seen.filter((e) => e.e === 'item').map((e) => e.node));
    const missing = committed.map((e) => e.node!).filter((node) => !handed.has(node));
    expect(committed.length).toBeGreaterThanOrEqual(half);
    // only the last commits may still have had their items in the outbox when the process died
    expect(missing.length).toBeLessThanOrEqual(WINDOW);
    const lastCommits = new Set(committed.slice(-WINDOW).map((e) => e.node));
    expect(missing.filter((node) => !lastCommits.has(node))).toEqual([]);
  });

  it('a restart queues again what the dead process relayed but never claimed, and finishes', async () => {
    const prefix = `crash-${++prefixNo}:`;
    const first = start('volatile-1', {
      KEY_PREFIX: prefix,
      QUEUES: 'volatile',
      SUBMIT: '1',
      PARSER: '2',
      LEASE_MS: '1000',
      RELAY_LEASE_MS: '1000',
    });
    // killed once product nodes were relayed to its in-memory queue faster than two consumers
    // claim them: most of them are queued there and never claimed when it dies
    await until('product nodes relayed and not yet claimed', first, () => {
      const seen = events(first);
      const produced = seen.filter((e) => e.e === 'produced' && e.step === PRODUCT_STEP).length;
      const committed = seen.filter((e) => e.e === 'commit' && e.step === PRODUCT_STEP).length;
      return committed >= 1 && produced - committed >= 20;
    });
    first.child.kill('SIGKILL');
    await first.exited;
    const before = new Set(
      events(first)
        .filter((e) => e.e === 'item' && e.kind === 'product')
        .map((e) => e.product),
    );
    expect(before.size).toBeLessThan(site.expectedProducts().length);

    // the same deployment settings: a node or outbox lease of the dead process runs out in 1 s
    const second = start('volatile-2', {
      KEY_PREFIX: prefix,
      QUEUES: 'volatile',
      PARSER: '8',
      LEASE_MS: '1000',
      RELAY_LEASE_MS: '1000',
    });
    const exit = await second.exited;
    expect(exit, second.stderr).toEqual({ code: 0, signal: null });
    const after = events(second);
    expect(after.at(-1)?.e).toBe('idle');
    const products = new Set([
      ...before,
      ...after.filter((e) => e.e === 'item' && e.kind === 'product').map((e) => e.product),
    ]);
    // the restart did the missing work: every product is there, none was lost with the queue
    expect([...products].sort()).toEqual(site.expectedProducts());
    expect(after.some((e) => e.e === 'commit' && e.step === PRODUCT_STEP)).toBe(true);
  });
});
