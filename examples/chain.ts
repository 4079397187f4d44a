/**
 * The task-chain engine, single-node: write a module, run a task through it, watch its events,
 * collect its items, and see a module that keeps failing stopped by its error threshold while
 * the other module of the same task finishes.
 *
 *   npx tsx examples/chain.ts
 */
import { startTestSite } from './support/test-site.js';
import { createChainEngine, defineModule } from 'mocra';

// a local site: a catalogue, list pages, products (no faults here; see examples/demo.ts for those)
const site = await startTestSite({
  categories: 2,
  pagesPerCategory: 2,
  productsPerPage: 3,
  flakyRatio: 0,
  slowRatio: 0,
});

// A module is an ordered list of steps. Each step generates requests from its input; the engine
// downloads them; `parse` turns each response into output `items` and `next` inputs, and every
// `next` input becomes a node of the following step. A node commits once: its items and its
// successors are produced exactly once, however often it is delivered or retried.
const prices = defineModule({
  id: 'prices',
  steps: [
    {
      name: 'pages',
      generate: () => [
        { url: `${site.url}/category/c0/page/1` },
        { url: `${site.url}/category/c1/page/1` },
      ],
      parse: (response) => ({
        next: (JSON.parse(response.body) as { products: string[] }).products,
      }),
    },
    {
      name: 'product',
      generate: ({ input }) => [{ url: `${site.url}/product/${String(input)}` }],
      parse: (response) => {
        const { id, price } = JSON.parse(response.body) as { id: string; price: number };
        return { items: [{ id, price }] };
      },
    },
  ],
});

// A module whose second step always fails: its pages do not exist, and its parse refuses a 404
// (a thrown error fails the node; the engine emits an ErrorTaskModel and retries it later).
// `errorThreshold: 3` stops this module at its third failure; other modules are not affected.
const archive = defineModule({
  id: 'archive',
  errorThreshold: 3,
  steps: [
    {
      name: 'years',
      generate: () => [{ url: `${site.url}/catalogue` }],
      parse: () => ({ next: [2019, 2020, 2021, 2022] }),
    },
    {
      name: 'year',
      generate: ({ input }) => [{ url: `${site.url}/archive/${String(input)}` }],
      parse: (response, { request }) => {
        if (response.status !== 200) throw new Error(`${request.url} answered ${response.status}`);
        return { items: [JSON.parse(response.body) as string] };
      },
    },
  ],
});

const items: { id: string; price: number }[] = [];
const engine = createChainEngine({
  modules: [prices, archive],
  // no store given: an in-process LocalBackend, so the runtime mode is single_node
  // every item of a committed node (at least once across crashes; single-node here: once)
  onItem: ({ moduleId, item }) => {
    if (moduleId === 'prices') items.push(item as { id: string; price: number });
  },
  // failed nodes are retried through ErrorTaskModels with this backoff
  nodeRetry: { maxRetries: 5, initialDelayMs: 20, maxDelayMs: 100 },
  taskErrorThreshold: 50, // the task-wide backstop; the module threshold decides first
});

// typed events: a node committed, a node failed, a module (or task) was stopped
let committed = 0;
engine.on('ModuleStepAdvanced', () => committed++);
engine.on('ErrorTaskProduced', (e) =>
  console.log(
    `  ${e.moduleId} step ${e.stepIdx} failed (attempt ${e.attempt}): ${e.error.message}`,
  ),
);
engine.on('TaskTerminatedByThreshold', (e) =>
  console.log(`  ${e.scope} ${e.moduleId} terminated after ${e.moduleErrors} failures`),
);

console.log(`running task "example" (modules prices, archive) in ${engine.runtimeMode} mode`);
await engine.start();
await engine.submit({
  taskId: 'example',
  account: 'acme',
  platform: 'web',
  modules: ['prices', 'archive'],
});
await engine.onIdle();
await engine.stop();
await site.close();

const stats = engine.stats();
console.log(`${items.length} prices, e.g. ${JSON.stringify(items[0])}`);
console.log(
  `${committed} nodes committed, ${stats.downloads} downloads, ` +
    `${stats.nodeFailures} node failures, ${stats.modulesTerminated} module terminated`,
);

// the example checks itself, so `npm run examples` notices if it stops doing what it says
if (
  items.length !== 6 ||
  new Set(items.map((i) => i.id)).size !== 6 ||
  stats.modulesTerminated !== 1 ||
  committed !== 8 // prices: 1 + 6 nodes; archive: its first step only
) {
  console.error('unexpected outcome');
  process.exitCode = 1;
}
