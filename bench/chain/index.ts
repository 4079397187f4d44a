/**
 * bench/chain: the whole chain engine, single-node (LocalBackend, in-memory queues), running
 * the 3-step module of the demo (catalogue → list pages → product + reviews,
 * examples/support/shop-module.ts) against the local test site with no faults and a server
 * budget far above what we send. Every round is a new engine and a new task over the same site.
 *
 *   node --expose-gc --import tsx bench/chain/index.ts
 *
 * Throughput: committed nodes per second of wall time per round, median of the rounds.
 * Latency, per node, over the measured rounds:
 *   - processing: from the node's `generate` being called (after its claim) to its
 *     `ModuleStepAdvanced` event (after its commit): generate + downloads + parses + commit;
 *   - end to end: from its `ParserTaskProduced` event to its `ModuleStepAdvanced` event, which
 *     adds the time the node waited on the parser queue behind its siblings (a list page fans
 *     out into many product nodes at once, so this grows with the fan-out, not with the engine).
 *
 * No peer library runs the same exactly-once step chain, so there is no peer row. For scale, the
 * last row is the same crawl written by hand with `fetch` and p-limit (same URLs, concurrency
 * 16, no state, no retries, no guarantees): on loopback the HTTP round trips dominate, and the
 * gap between it and the engine is what the engine's claims, commits and queues cost.
 * BENCH_ROUNDS and BENCH_CHAIN_PRODUCTS_PER_PAGE size it.
 */
import { loadavg } from 'node:os';
import pLimit from 'p-limit';
import {
  createChainEngine,
  defineModule,
  LocalBackend,
  type ChainConcurrency,
  type ModuleDefinition,
  type NodeEventBase,
} from '../../src/index.js';
import { shopModule, type ShopItem } from '../../examples/support/shop-module.js';
import { startTestSite } from '../../examples/support/test-site.js';
import { compareThroughput, median, printCase, writeResults } from '../lib/harness.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const warmup = 2;
const CATEGORIES = 5;
const PAGES = 4;
const PER_PAGE = Number(process.env.BENCH_CHAIN_PRODUCTS_PER_PAGE ?? 10);

const site = await startTestSite({
  categories: CATEGORIES,
  pagesPerCategory: PAGES,
  productsPerPage: PER_PAGE,
  flakyRatio: 0,
  slowRatio: 0,
  serverRatePerSec: 1_000_000,
});
const expected = site.expectedProducts();
const NODES = 1 + CATEGORIES * PAGES + expected.length;
const DOWNLOADS = 1 + CATEGORIES * PAGES + 2 * expected.length;

const nodeKey = (e: Pick<NodeEventBase, 'runId' | 'moduleId' | 'stepIdx' | 'prefixRequest'>) =>
  `${e.runId}|${e.moduleId}|${e.stepIdx}|${e.prefixRequest}`;

/** The shop module with each step's `generate` wrapped to note when its node started work. */
function timedModule(started: Map<string, number>): ModuleDefinition {
  const base = shopModule(site.url);
  return defineModule({
    id: base.id,
    steps: base.steps.map((step) => ({
      ...step,
      generate: (ctx) => {
        started.set(nodeKey({ ...ctx, runId: ctx.task.runId }), performance.now());
        return step.generate(ctx);
      },
    })),
  });
}

interface Variant {
  name: string;
  concurrency: ChainConcurrency;
  processing: number[];
  endToEnd: number[];
  calls: number;
}

const variants: Variant[] = [
  {
    name: 'mocra, parser 8 / publish 16 (default)',
    concurrency: {},
    processing: [],
    endToEnd: [],
    calls: 0,
  },
  {
    name: 'mocra, parser 32 / publish 32',
    concurrency: { parser: 32, download: 32 },
    processing: [],
    endToEnd: [],
    calls: 0,
  },
];

let taskSeq = 0;
/** One crawl of the whole site by a fresh engine; returns the nodes it committed. */
async function round(v: Variant): Promise<number> {
  const measured = ++v.calls > warmup;
  const started = new Map<string, number>();
  const produced = new Map<string, number>();
  const products = new Map<string, number>();
  const store = new LocalBackend();
  const engine = createChainEngine({
    modules: [timedModule(started)],
    store,
    concurrency: v.concurrency,
    rateLimit: { global: false, perKey: { rate: 1_000_000, intervalMs: 1000, burst: 100_000 } },
    onItem: ({ item }) => {
      const it = item as ShopItem;
      if (it.kind === 'product') products.set(it.id, (products.get(it.id) ?? 0) + 1);
    },
  });
  engine.on('ParserTaskProduced', (e) => produced.set(nodeKey(e), performance.now()));
  engine.on('ModuleStepAdvanced', (e) => {
    if (!measured) return;
    const now = performance.now();
    const key = nodeKey(e);
    v.processing.push(now - started.get(key)!);
    v.endToEnd.push(now - produced.get(key)!);
  });
  await engine.start();
  await engine.submit({
    taskId: `bench-${++taskSeq}`,
    account: 'bench',
    platform: 'web',
    modules: ['shop'],
  });
  await engine.onIdle();
  await engine.stop();
  await store.close();
  const s = engine.stats();
  // numbers from a wrong run are worthless: check the crawl before counting it
  if (
    s.commits.COMMIT_OK !== NODES ||
    s.downloads !== DOWNLOADS ||
    products.size !== expected.length ||
    [...products.values()].some((n) => n !== 1)
  ) {
    throw new Error(
      `bench/chain: wrong crawl: ${JSON.stringify(s.commits)} commits (expected ${NODES}), ` +
        `${s.downloads} downloads (expected ${DOWNLOADS}), ${products.size} products`,
    );
  }
  return NODES;
}

/** The same crawl by hand: fetch through a concurrency pool, nothing else. */
async function handCrawl(): Promise<number> {
  const limit = pLimit(16);
  const get = <T>(path: string): Promise<T> =>
    limit(async () => {
      const response = await fetch(site.url + path);
      if (response.status !== 200) throw new Error(`${path} answered ${response.status}`);
      return (await response.json()) as T;
    });
  const catalogue = await get<{ categories: { id: string; pages: number }[] }>('/catalogue');
  const pages = catalogue.categories.flatMap((c) =>
    Array.from({ length: c.pages }, (_, i) => `/category/${c.id}/page/${i + 1}`),
  );
  let products = 0;
  await Promise.all(
    pages.map(async (page) => {
      const list = await get<{ products: string[] }>(page);
      await Promise.all(
        list.products.map(async (id) => {
          await Promise.all([get(`/product/${id}`), get(`/product/${id}/reviews`)]);
          products++;
        }),
      );
    }),
  );
  if (products !== expected.length) throw new Error(`hand crawl: ${products} products`);
  return NODES;
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const ms = (n: number): number => Number(n.toFixed(2));

const loadStart = Number(loadavg()[0]!.toFixed(2));
try {
  const result = await compareThroughput(
    `3-step crawl of the local site, ${NODES} nodes and ${DOWNLOADS} downloads per round`,
    [
      ...variants.map((v) => ({ name: v.name, round: () => round(v) })),
      { name: 'hand-written fetch crawl (reference)', round: handCrawl },
    ],
    { rounds, warmup },
  );
  result.unit = 'nodes/s';
  printCase(result);

  const notes: Record<string, unknown> = {
    peer:
      'none: no other library runs an exactly-once step chain; the last row is the same crawl ' +
      'by hand (fetch + p-limit 16, no state, no retries, no guarantees), for scale only',
    setup:
      'single_node: LocalBackend, in-memory queues, fetch downloader over loopback HTTP keep-alive; ' +
      'no faults, server budget 1,000,000/s; a new engine per round',
    'nodes per round': NODES,
    'load average (1 min) at start': loadStart,
    'load average (1 min) at end': Number(loadavg()[0]!.toFixed(2)),
    'downloads per round': DOWNLOADS,
  };
  console.log('\nnode latency over the measured rounds (ms)');
  for (const [i, v] of variants.entries()) {
    const label = i === 0 ? 'default concurrency' : 'parser 32';
    const row = {
      processing_p50: ms(median(v.processing)),
      processing_p95: ms(percentile(v.processing, 95)),
      end_to_end_p50: ms(median(v.endToEnd)),
      end_to_end_p95: ms(percentile(v.endToEnd, 95)),
    };
    console.log(`  ${label.padEnd(22)} ${JSON.stringify(row)}`);
    notes[`node latency ms, ${label}, processing (generate → ModuleStepAdvanced) p50`] =
      row.processing_p50;
    notes[`node latency ms, ${label}, processing p95`] = row.processing_p95;
    notes[`node latency ms, ${label}, end to end (ParserTaskProduced → ModuleStepAdvanced) p50`] =
      row.end_to_end_p50;
    notes[`node latency ms, ${label}, end to end p95`] = row.end_to_end_p95;
  }
  console.log(`\nwrote ${writeResults('chain', [result], notes)}`);
} finally {
  await site.close();
}
