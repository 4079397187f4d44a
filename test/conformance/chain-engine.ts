/**
 * End-to-end scenarios of the chain engine against a real local HTTP site. The same scenarios
 * and the same expected end states run on the in-process store and on Redis (with in-process
 * queues): the engine must give the same results on both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createChainEngine,
  defineModule,
  InMemoryMetrics,
  type CacheService,
  type ChainEngine,
  type ChainEngineOptions,
  type ChainEventMap,
  type ChainItem,
  type ModuleDefinition,
} from '../../src/index.js';
import { startTestSite, type TestSite } from '../../examples/support/test-site.js';

export interface EngineFixture {
  store: CacheService;
  cleanup(): Promise<void>;
}

interface Run {
  engine: ChainEngine;
  items: ChainItem[];
  events: { [K in keyof ChainEventMap]: ChainEventMap[K][] };
  metrics: InMemoryMetrics;
}

const FAST_RETRY = { maxRetries: 3, initialDelayMs: 5, maxDelayMs: 20, jitter: 0 };
const FAST_LIMIT = { global: false as const, perKey: { rate: 2000, intervalMs: 1000, burst: 200 } };

/** The 3-step shop module: catalogue → list pages → products (one item per product). */
export function shopModule(site: TestSite, id = 'shop'): ModuleDefinition {
  return defineModule({
    id,
    steps: [
      {
        name: 'catalogue',
        generate: () => [{ url: `${site.url}/catalogue` }],
        parse: (r) => {
          const body = JSON.parse(r.body) as { categories: { id: string; pages: number }[] };
          return {
            next: body.categories.flatMap((c) =>
              Array.from({ length: c.pages }, (_, n) => ({ cat: c.id, n: n + 1 })),
            ),
          };
        },
      },
      {
        name: 'list',
        generate: (ctx) => {
          const input = ctx.input as { cat: string; n: number };
          return [{ url: `${site.url}/category/${input.cat}/page/${input.n}` }];
        },
        parse: (r) => ({ next: (JSON.parse(r.body) as { products: string[] }).products }),
      },
      {
        name: 'product',
        generate: (ctx) => [{ url: `${site.url}/product/${String(ctx.input)}` }],
        parse: (r) => ({ items: [JSON.parse(r.body) as { id: string }] }),
      },
    ],
  });
}

/** A module whose every node fails (its pages do not exist and its parse refuses a 404). */
function brokenModule(site: TestSite, id: string, nodes: number): ModuleDefinition {
  return defineModule({
    id,
    steps: [
      {
        name: 'seed',
        generate: () => [{ url: `${site.url}/catalogue` }],
        parse: () => ({ next: Array.from({ length: nodes }, (_, i) => i) }),
      },
      {
        name: 'missing',
        generate: (ctx) => [{ url: `${site.url}/missing/${String(ctx.input)}` }],
        parse: (r) => {
          if (r.status !== 200) throw new Error(`page answered ${r.status}`);
          return {};
        },
      },
    ],
  });
}

function productIds(items: ChainItem[]): string[] {
  return items.map((i) => (i.item as { id: string }).id).sort();
}

export function runChainEngineScenarios(name: string, fixture: () => Promise<EngineFixture>): void {
  describe(`chain engine scenarios: ${name}`, () => {
    let site: TestSite;
    const open: { engine: ChainEngine; fx: EngineFixture }[] = [];

    beforeAll(async () => {
      site = await startTestSite({
        flakyRatio: 0.25,
        flakyHits: 1,
        slowRatio: 0.1,
        slowMs: 20,
        serverRatePerSec: 400,
      });
    });
    afterAll(async () => {
      for (const { engine, fx } of open.splice(0)) {
        await engine.stop();
        await fx.cleanup();
      }
      await site.close();
    });

    async function run(
      options: Omit<ChainEngineOptions, 'store' | 'onItem' | 'metrics'>,
      tasks: Parameters<ChainEngine['submit']>[0][],
    ): Promise<Run> {
      const fx = await fixture();
      const items: ChainItem[] = [];
      const metrics = new InMemoryMetrics();
      const engine = createChainEngine({
        rateLimit: FAST_LIMIT,
        downloadRetry: { maxRetries: 4, initialDelayMs: 5, maxDelayMs: 50, maxRetryAfterMs: 50 },
        nodeRetry: FAST_RETRY,
        retryPollMs: 5,
        ...options,
        store: fx.store,
        metrics,
        onItem: (item) => {
          items.push(item);
        },
      });
      open.push({ engine, fx });
      const events = {
        ParserTaskProduced: [],
        ErrorTaskProduced: [],
        ModuleStepAdvanced: [],
        ModuleStepFallback: [],
        TaskTerminatedByThreshold: [],
        ItemProduced: [],
        NodeFailed: [],
        MessageDeadLettered: [],
      } as Run['events'];
      for (const key of Object.keys(events) as (keyof ChainEventMap)[]) {
        engine.on(key, (e) => (events[key] as unknown[]).push(e));
      }
      await engine.start();
      for (const task of tasks) await engine.submit(task);
      await engine.onIdle();
      return { engine, items, events, metrics };
    }

    it('crawls a flaky, rate-limited site: every product exactly once, every node advanced once', async () => {
      const { engine, items, events, metrics } = await run({ modules: [shopModule(site)] }, [
        { taskId: 'crawl', account: 'acme', platform: 'web', modules: ['shop'] },
      ]);
      expect(productIds(items)).toEqual(site.expectedProducts());
      const stats = engine.stats();
      // 1 catalogue + 12 list pages + 60 products
      const nodes = 1 + 12 + site.expectedProducts().length;
      expect(stats.commits).toEqual({ COMMIT_OK: nodes });
      expect(stats.claims).toEqual({ EXECUTE: nodes });
      expect(events.ModuleStepAdvanced).toHaveLength(nodes);
      expect(events.ParserTaskProduced).toHaveLength(nodes);
      expect(events.ItemProduced).toHaveLength(items.length);
      expect(stats.downloadRetries).toBeGreaterThan(0); // the flaky pages were retried
      expect(stats.downloads).toBe(nodes + stats.downloadRetries);
      expect(events.ErrorTaskProduced).toHaveLength(0);
      expect(metrics.counter('ptm_commit_total', { result: 'COMMIT_OK' })).toBe(nodes);
      expect(metrics.counter('items_total', { module: 'shop' })).toBe(items.length);
    });

    it('retries a node whose parse fails, through an ErrorTaskModel, and produces its items once', async () => {
      const failures = new Map<string, number>();
      const base = shopModule(site, 'shaky');
      const product = base.steps[2]!;
      const shaky = defineModule({
        id: 'shaky',
        steps: [
          base.steps[0]!,
          base.steps[1]!,
          {
            name: 'product',
            generate: product.generate,
            parse: (r, ctx) => {
              const id = String(ctx.input);
              const seen = failures.get(id) ?? 0;
              // products ending in 0 or 5 fail their first two parses
              if (/[05]$/.test(id) && seen < 2) {
                failures.set(id, seen + 1);
                throw new Error(`garbled page for ${id}`);
              }
              return product.parse(r, ctx);
            },
          },
        ],
      });
      const { engine, items, events } = await run(
        { modules: [shaky], moduleErrorThreshold: 1000, taskErrorThreshold: 1000 },
        [{ taskId: 'shaky', account: 'acme', platform: 'web', modules: ['shaky'] }],
      );
      expect(productIds(items)).toEqual(site.expectedProducts());
      const injected = [...failures.values()].reduce((a, b) => a + b, 0);
      expect(injected).toBeGreaterThan(0);
      expect(events.ErrorTaskProduced).toHaveLength(injected);
      expect(engine.stats().retriesScheduled).toBe(injected);
      expect(events.ParserTaskProduced.filter((e) => e.source === 'retry')).toHaveLength(injected);
      expect(engine.stats().nodesGivenUp).toBe(0);
      expect(events.ErrorTaskProduced.every((e) => e.attempt >= 1 && e.attempt <= 2)).toBe(true);
    });

    it('terminates a failing module at its threshold while the other module finishes', async () => {
      const { engine, items, events } = await run(
        {
          modules: [shopModule(site), brokenModule(site, 'broken', 6)],
          moduleErrorThreshold: 3,
          taskErrorThreshold: 1000,
        },
        [{ taskId: 'mixed', account: 'acme', platform: 'web', modules: ['shop', 'broken'] }],
      );
      expect(productIds(items)).toEqual(site.expectedProducts());
      expect(events.TaskTerminatedByThreshold).toEqual([
        expect.objectContaining({ scope: 'module', moduleId: 'broken', taskId: 'mixed' }),
      ]);
      expect(engine.stats().modulesTerminated).toBe(1);
      expect(engine.stats().tasksTerminated).toBe(0);
      // no broken node ever committed
      expect(
        events.ModuleStepAdvanced.filter((e) => e.moduleId === 'broken' && e.stepIdx === 1),
      ).toHaveLength(0);
      const errorsByModule = events.ErrorTaskProduced.filter((e) => e.moduleId === 'shop');
      expect(errorsByModule).toHaveLength(0);
    });

    it('terminates the whole task at the task threshold', async () => {
      const { engine, events } = await run(
        {
          modules: [brokenModule(site, 'b1', 4), brokenModule(site, 'b2', 4)],
          moduleErrorThreshold: 100,
          taskErrorThreshold: 3,
        },
        [{ taskId: 'doomed', account: 'acme', platform: 'web', modules: ['b1', 'b2'] }],
      );
      expect(events.TaskTerminatedByThreshold).toEqual([
        expect.objectContaining({ scope: 'task', taskId: 'doomed' }),
      ]);
      expect(engine.stats().tasksTerminated).toBe(1);
      expect(engine.stats().modulesTerminated).toBe(0);
      // after termination nothing of the task advances: every later message is skipped
      const last = events.TaskTerminatedByThreshold[0]!;
      expect(last.taskErrors).toBeGreaterThanOrEqual(3);
    });

    it('falls back once from the prefix request, and refuses a second fallback (no loop)', async () => {
      let catalogueParses = 0;
      const fallbackModule = defineModule({
        id: 'fb',
        steps: [
          {
            name: 'seed',
            generate: () => [{ url: `${site.url}/catalogue` }],
            parse: () => {
              catalogueParses++;
              // the first parse hands out stale tokens; a re-parse (the fallback) fresh ones
              const token = catalogueParses === 1 ? 'stale' : 'fresh';
              return {
                next: [
                  { token, n: 1 },
                  { token: 'cursed', n: 2 },
                ],
              };
            },
          },
          {
            name: 'use',
            generate: (ctx) => {
              const input = ctx.input as { token: string; n: number };
              if (input.token !== 'fresh') throw new Error(`token ${input.token} rejected`);
              return [{ url: `${site.url}/product/p-1-1-1` }];
            },
            parse: (r, ctx) => ({ items: [{ n: (ctx.input as { n: number }).n, ok: r.status }] }),
          },
        ],
      });
      // 'cursed' is never fresh: its re-parse gives n=2 with token 'cursed' again
      const { engine, items, events } = await run(
        { modules: [fallbackModule], nodeRetry: { ...FAST_RETRY, maxRetries: 2 } },
        [{ taskId: 'fallback', account: 'acme', platform: 'web', modules: ['fb'] }],
      );
      expect(items.map((i) => (i.item as { n: number }).n)).toEqual([1]);
      const allowed = events.ModuleStepFallback.filter((e) => e.decision === 'allowed');
      const refused = events.ModuleStepFallback.filter((e) => e.decision === 'refused');
      // one fallback per node at most: node 1 (then fresh) and node 2 (still cursed)
      expect(allowed).toHaveLength(2);
      expect(new Set(allowed.map((e) => e.prefixRequest)).size).toBe(2);
      // node 2 fails, retries twice, and each retry's fallback is refused
      expect(refused).toHaveLength(2);
      expect(
        refused.every(
          (e) =>
            e.prefixRequest === allowed.find((a) => a.prefixRequest.endsWith('#1'))!.prefixRequest,
        ),
      ).toBe(true);
      expect(events.NodeFailed).toEqual([
        expect.objectContaining({ reason: 'max_retries', stepIdx: 1 }),
      ]);
      expect(engine.stats().fallbacks).toBe(2);
      expect(engine.stats().fallbacksRefused).toBe(2);
    });

    it('dead-letters malformed messages with their reason and keeps going', async () => {
      const { engine, items, events } = await run({ modules: [shopModule(site)] }, []);
      await engine.publish('{ not json');
      await engine.publish({ kind: 'parser_task', body: { taskId: 'x' } });
      await engine.publish({
        kind: 'parser_task',
        body: {
          taskId: 'ghost',
          runId: 'ghost',
          account: 'a',
          platform: 'p',
          moduleId: 'shop',
          stepIdx: 0,
          prefixRequest: '',
        },
      });
      await engine.submit({
        taskId: 'after',
        account: 'acme',
        platform: 'web',
        modules: ['shop', 'nope'],
      });
      await engine.onIdle();
      const reasons = engine.deadLetters().map((d) => d.reason);
      expect(reasons).toHaveLength(4);
      expect(reasons[0]).toMatch(/^NormalizeInput: message is not valid JSON/);
      expect(reasons[1]).toMatch(/^NormalizeInput: .*`runId`/);
      expect(reasons).toContainEqual(expect.stringMatching(/^LoadTask: task "ghost" not found/));
      expect(reasons).toContainEqual(
        expect.stringMatching(/^BuildModules: module "nope" is not registered/),
      );
      expect(events.MessageDeadLettered).toHaveLength(4);
      expect(productIds(items)).toEqual(site.expectedProducts()); // the valid task still ran
      await expect(
        engine.submit({ taskId: '', account: 'a', platform: 'p', modules: ['shop'] }),
      ).rejects.toMatchObject({ code: 'MESSAGE_INVALID' });
    });

    it('ignores duplicate and re-submitted messages: no node advances twice', async () => {
      const { engine, items } = await run({ modules: [shopModule(site)] }, [
        { taskId: 'dup', runId: 'dup', account: 'acme', platform: 'web', modules: ['shop'] },
      ]);
      const before = items.length;
      // the same run submitted again (an explicit runId): idempotent
      await engine.submit({
        taskId: 'dup',
        runId: 'dup',
        account: 'acme',
        platform: 'web',
        modules: ['shop'],
      });
      const root = {
        kind: 'parser_task',
        body: {
          taskId: 'dup',
          runId: 'dup',
          account: 'acme',
          platform: 'web',
          moduleId: 'shop',
          stepIdx: 0,
          prefixRequest: '',
        },
      };
      await engine.publish(root);
      await engine.publish(root);
      await engine.onIdle();
      expect(items.length).toBe(before);
      expect(engine.stats().skipped.duplicate_done).toBe(3);
      expect(engine.stats().commits.COMMIT_OK).toBe(1 + 12 + site.expectedProducts().length);
    });

    it('applies back-pressure with a small queue and a slow parser: nothing lost, producers wait', async () => {
      const base = shopModule(site, 'slow');
      const slow = defineModule({
        id: 'slow',
        steps: base.steps.map((s) => ({
          ...s,
          parse: async (r: Parameters<typeof s.parse>[0], ctx: Parameters<typeof s.parse>[1]) => {
            await new Promise((resolve) => setTimeout(resolve, 2));
            return s.parse(r, ctx);
          },
        })),
      });
      const { items, metrics } = await run(
        { modules: [slow], queueCapacity: 3, concurrency: { parser: 2 } },
        [{ taskId: 'bp', account: 'acme', platform: 'web', modules: ['slow'] }],
      );
      expect(productIds(items)).toEqual(site.expectedProducts());
      expect(
        metrics.counter('queue_backpressure_total', { queue: 'parser', reason: 'full_wait' }),
      ).toBeGreaterThan(0);
    });
  });
}
