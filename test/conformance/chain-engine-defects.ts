/**
 * Scenarios of the chain engine for defects found by review and fault injection (issue 17),
 * each run on the in-process store and on Redis (with in-process queues): runs and run ids,
 * obsolete ErrorTaskModels, items whose sink throws, bounded stop, secrets at rest, fairness
 * to the event loop. A fake downloader keeps them fast and deterministic.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  createChainEngine,
  defineModule,
  type CacheService,
  type ChainEngine,
  type ChainEngineOptions,
  type ChainEventMap,
  type ChainItem,
  type Downloader,
  type DownloadResult,
  type JsonValue,
} from '../../src/index.js';
import type { EngineFixture } from './chain-engine.js';

const ok = (body: unknown): DownloadResult => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/** /list → ids 1..3, /item/:id → { id }. */
const fakeSite: Downloader = async (request) => {
  const url = new URL(request.url);
  if (url.pathname === '/list') return ok({ ids: [1, 2, 3] });
  return ok({ id: Number(url.pathname.split('/').pop()) });
};

/** A two-step module: /list → one node per id → one item each. */
function twoStep(id = 'm', parse?: (input: JsonValue, attempt: number) => void) {
  const seen = new Map<string, number>();
  return defineModule({
    id,
    steps: [
      {
        name: 'list',
        generate: () => [{ url: 'http://fake/list' }],
        parse: (r) => ({ next: (JSON.parse(r.body) as { ids: number[] }).ids }),
      },
      {
        name: 'item',
        generate: (ctx) => [{ url: `http://fake/item/${String(ctx.input)}` }],
        parse: (r, ctx) => {
          const key = `${ctx.task.runId}/${String(ctx.input)}`;
          const n = (seen.get(key) ?? 0) + 1;
          seen.set(key, n);
          parse?.(ctx.input as JsonValue, n);
          return { items: [JSON.parse(r.body) as JsonValue] };
        },
      },
    ],
  });
}

const FAST: Partial<ChainEngineOptions> = {
  rateLimit: { global: false, perKey: { rate: 100_000, burst: 10_000 } },
  downloadRetry: { maxRetries: 1, initialDelayMs: 1, maxDelayMs: 2, maxRetryAfterMs: 10 },
  nodeRetry: { maxRetries: 3, initialDelayMs: 1, maxDelayMs: 5, jitter: 0 },
  retryPollMs: 2,
};

type Events = { [K in keyof ChainEventMap]: ChainEventMap[K][] };

export function runChainEngineDefectScenarios(
  name: string,
  fixture: () => Promise<EngineFixture>,
): void {
  describe(`chain engine defects (issue 17): ${name}`, () => {
    const open: { engine: ChainEngine; fx: EngineFixture }[] = [];
    afterEach(async () => {
      for (const { engine, fx } of open.splice(0)) {
        await engine.stop();
        await fx.cleanup();
      }
    });

    async function start(
      options: Omit<ChainEngineOptions, 'store'>,
    ): Promise<{ engine: ChainEngine; items: ChainItem[]; events: Events; store: CacheService }> {
      const fx = await fixture();
      const items: ChainItem[] = [];
      const engine = createChainEngine({
        ...FAST,
        onItem: (item) => {
          items.push(item);
        },
        downloader: fakeSite,
        ...options,
        store: fx.store,
      });
      open.push({ engine, fx });
      const events = {} as Events;
      for (const key of [
        'ParserTaskProduced',
        'ErrorTaskProduced',
        'ModuleStepAdvanced',
        'ModuleStepFallback',
        'TaskTerminatedByThreshold',
        'ItemProduced',
        'NodeFailed',
        'MessageDeadLettered',
      ] as (keyof ChainEventMap)[]) {
        (events as Record<string, unknown[]>)[key] = [];
        engine.on(key, (e) => (events[key] as unknown[]).push(e));
      }
      await engine.start();
      return { engine, items, events, store: fx.store };
    }

    const task = { taskId: 'daily', account: 'acme', platform: 'web', modules: ['m'] };

    it('6: each submit without a runId starts a new run with a fresh id; an explicit runId stays idempotent', async () => {
      const { engine, items } = await start({ modules: [twoStep()] });
      const first = await engine.submit(task);
      await engine.onIdle();
      const second = await engine.submit(task);
      await engine.onIdle();
      expect(first.taskId).toBe('daily');
      expect(second.taskId).toBe('daily');
      expect(first.runId).not.toBe(second.runId);
      expect(first.runId).not.toBe('daily');
      // both runs produced their three items
      expect(items.filter((i) => i.runId === first.runId)).toHaveLength(3);
      expect(items.filter((i) => i.runId === second.runId)).toHaveLength(3);
      // the same explicit run twice: the second is a no-op
      const explicit = await engine.submit({ ...task, runId: 'run-1' });
      await engine.onIdle();
      expect(explicit).toEqual({ taskId: 'daily', runId: 'run-1' });
      await engine.submit({ ...task, runId: 'run-1' });
      await engine.onIdle();
      expect(items.filter((i) => i.runId === 'run-1')).toHaveLength(3);
      expect(items).toHaveLength(9);
    });

    it('6: publish() of a task message without a runId starts a new run too', async () => {
      const { engine, items } = await start({ modules: [twoStep()] });
      await engine.publish({ kind: 'task', body: task });
      await engine.onIdle();
      await engine.publish(JSON.stringify({ kind: 'task', body: task }));
      await engine.onIdle();
      const runs = new Set(items.map((i) => i.runId));
      expect(runs.size).toBe(2);
      expect(items).toHaveLength(6);
    });

    it('3: a duplicate ErrorTaskModel after its retry committed is skipped as obsolete, not given up', async () => {
      // item 2 fails its first parse, then its retry commits
      const { engine, items, events } = await start({
        modules: [
          twoStep('m', (input, n) => {
            if (input === 2 && n === 1) throw new Error('garbled');
          }),
        ],
      });
      const { runId } = await engine.submit(task);
      await engine.onIdle();
      expect(items).toHaveLength(3);
      expect(events.ErrorTaskProduced).toHaveLength(1);
      const failure = events.ErrorTaskProduced[0]!;
      // the same ErrorTaskModel delivered again (a queue's at-least-once re-delivery)
      await engine.publish({
        kind: 'error_task',
        body: {
          taskId: failure.taskId,
          runId,
          account: 'acme',
          platform: 'web',
          moduleId: failure.moduleId,
          stepIdx: failure.stepIdx,
          prefixRequest: failure.prefixRequest,
          data: 2,
          stayCurrentStep: true,
          error: failure.error,
          attempt: failure.attempt,
        },
      });
      await engine.onIdle();
      const stats = engine.stats();
      expect(events.NodeFailed).toEqual([]);
      expect(stats.nodesGivenUp).toBe(0);
      expect(stats.skipped.error_task_obsolete).toBe(1);
      expect(stats.received.error).toBe(2);
      expect(items).toHaveLength(3);
    });

    it('7: stop() is bounded by stopTimeoutMs when a step ignores its abort signal; nothing is committed after', async () => {
      let entered!: () => void;
      const inStep = new Promise<void>((resolve) => (entered = resolve));
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const stubborn = defineModule({
        id: 'm',
        steps: [
          {
            name: 'stubborn',
            // ignores ctx.signal: only the gate ends it
            generate: async () => {
              entered();
              await gate;
              return []; // nothing to download: the node would commit at once
            },
            parse: () => ({ items: ['late'] }),
          },
        ],
      });
      const { engine, items } = await start({ modules: [stubborn], stopTimeoutMs: 50 });
      await engine.submit(task);
      await inStep;
      // stop() resolves while the step is still blocked (the gate opens only after it, or
      // after a generous 2 s: a stop that waits for the step loses the race)
      const hung = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 2000));
      const outcome = await Promise.race([engine.stop().then(() => 'stopped' as const), hung]);
      open();
      expect(outcome).toBe('stopped');
      await new Promise((resolve) => setTimeout(resolve, 50));
      // the abandoned node commits nothing when its step returns after all
      expect(engine.stats().commits.COMMIT_OK ?? 0).toBe(0);
      expect(items).toEqual([]);
    });

    it('4: an item whose onItem throws is handed over again with its itemId until it is taken', async () => {
      const calls: ChainItem[] = [];
      const { engine, events } = await start({
        modules: [twoStep()],
        itemRetry: { maxRetries: 3, initialDelayMs: 1, maxDelayMs: 5, jitter: 0 },
        onItem: (item) => {
          calls.push(item);
          const tries = calls.filter((c) => c.itemId === item.itemId).length;
          if ((item.item as { id: number }).id === 2 && tries <= 2) throw new Error('sink down');
        },
      });
      await engine.submit(task);
      await engine.onIdle();
      const refused = calls.filter((c) => (c.item as { id: number }).id === 2);
      expect(refused).toHaveLength(3);
      expect(new Set(refused.map((c) => c.itemId)).size).toBe(1);
      expect(events.ItemProduced).toHaveLength(3);
      expect(engine.stats().items).toBe(3);
      expect(engine.deadLetters()).toEqual([]);
    });

    it('4: an item refused on every try is dead-lettered with its itemId and the error, redacted', async () => {
      const calls: ChainItem[] = [];
      const { engine, events } = await start({
        modules: [twoStep()],
        itemRetry: { maxRetries: 2, initialDelayMs: 1, maxDelayMs: 5, jitter: 0 },
        onItem: (item) => {
          calls.push(item);
          if ((item.item as { id: number }).id === 2)
            throw new Error('login hunter2-secret refused; Authorization: Bearer abc.def.ghi');
        },
      });
      await engine.submit({ ...task, loginInfo: { user: 'u', password: 'hunter2-secret' } });
      await engine.onIdle();
      const refused = calls.filter((c) => (c.item as { id: number }).id === 2);
      expect(refused).toHaveLength(3); // the first try and two more
      const letters = engine.deadLetters();
      expect(letters).toHaveLength(1);
      expect(letters[0]!.reason).toContain(refused[0]!.itemId);
      expect(letters[0]!.reason).toMatch(/onItem: .*3 tries.*refused/);
      expect(letters[0]!.reason).not.toContain('hunter2-secret');
      expect(letters[0]!.reason).not.toContain('abc.def.ghi');
      expect(events.MessageDeadLettered).toHaveLength(1);
      expect(events.ItemProduced).toHaveLength(2);
    });
  });
}
