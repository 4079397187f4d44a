/**
 * One telemetry path, checked with REAL prom-client: after a faulty crawl (some nodes fail and
 * are given up, one message is dead-lettered), `stats()` and the registry agree counter by
 * counter, the dead letter is counted once, and the registry exposes every catalog metric.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as promClient from 'prom-client';
import {
  createChainEngine,
  defineModule,
  prometheusMetrics,
  type ChainEngineStats,
  type Downloader,
  type DownloadResult,
  type JsonValue,
} from '../../../../src/index.js';
import { METRICS } from '../../../../src/observe/metric-names.js';

const ok = (body: unknown): DownloadResult => ({
  status: 200,
  headers: {},
  body: JSON.stringify(body),
});

/** list → ids 1..6; item 3 always answers 503 (download fails), item 5 does not parse. */
const site: Downloader = async (request) => {
  const url = new URL(request.url);
  if (url.pathname === '/list') return ok({ ids: [1, 2, 3, 4, 5, 6] });
  const id = Number(url.pathname.split('/').pop());
  if (id === 3) return { status: 503, headers: {}, body: '' };
  if (id === 5) return { status: 200, headers: {}, body: 'not json' };
  return ok({ id });
};

const shop = defineModule({
  id: 'shop',
  steps: [
    {
      name: 'list',
      generate: () => [{ url: 'http://fake/list' }],
      parse: (r) => ({ next: (JSON.parse(r.body) as { ids: number[] }).ids }),
    },
    {
      name: 'item',
      generate: (ctx) => [{ url: `http://fake/item/${String(ctx.input)}` }],
      parse: (r) => ({ items: [JSON.parse(r.body) as JsonValue] }),
    },
  ],
});

type Series = { labels: Record<string, string | number>; value: number };

async function read(registry: promClient.Registry): Promise<Map<string, Series[]>> {
  const all = await registry.getMetricsAsJSON();
  return new Map(all.map((m) => [m.name, m.values as Series[]]));
}

function sum(
  metrics: Map<string, Series[]>,
  name: string,
  where: Record<string, string> = {},
): number {
  const values = metrics.get(`mocra_${name}`);
  if (values === undefined) throw new Error(`mocra_${name} is not registered`);
  return values
    .filter((v) => Object.entries(where).every(([k, want]) => v.labels[k] === want))
    .reduce((total, v) => total + v.value, 0);
}

/** Every counter of stats() next to the metric that carries the same event. */
function pairs(stats: ChainEngineStats, m: Map<string, Series[]>): [string, number, number][] {
  const rows: [string, number, number][] = [
    ['tasksSubmitted', stats.tasksSubmitted, sum(m, 'task_submitted_total')],
    ['nodeFailures', stats.nodeFailures, sum(m, 'error_task_emitted_total')],
    ['nodesGivenUp', stats.nodesGivenUp, sum(m, 'error_task_given_up_total')],
    ['retriesScheduled', stats.retriesScheduled, sum(m, 'error_task_retry_total')],
    ['downloads', stats.downloads, sum(m, 'download_total')],
    ['downloadRetries', stats.downloadRetries, sum(m, 'download_retry_total')],
    ['items', stats.items, sum(m, 'items_total')],
    ['fallbacks', stats.fallbacks, sum(m, 'fallback_gate_hit_total')],
    ['fallbacksRefused', stats.fallbacksRefused, sum(m, 'fallback_gate_block_total')],
    [
      'modulesTerminated',
      stats.modulesTerminated,
      sum(m, 'error_task_terminated_total', { scope: 'module' }),
    ],
    [
      'tasksTerminated',
      stats.tasksTerminated,
      sum(m, 'error_task_terminated_total', { scope: 'task' }),
    ],
    ['deadLettered', stats.deadLettered, sum(m, 'chain_dead_letter_total')],
    ['zombiesRecovered', stats.zombiesRecovered, sum(m, 'ptm_zombie_recover_total')],
    [
      'cacheHits',
      stats.cacheHits,
      sum(m, 'cache_hit_total', { cache: 'chain_task_record' }) +
        sum(m, 'cache_hit_total', { cache: 'chain_login_info' }),
    ],
    [
      'cacheMisses',
      stats.cacheMisses,
      sum(m, 'cache_miss_total', { cache: 'chain_task_record' }) +
        sum(m, 'cache_miss_total', { cache: 'chain_login_info' }),
    ],
  ];
  for (const role of ['task', 'parser', 'error'] as const) {
    const kind = { task: 'task', parser: 'parser_task', error: 'error_task' }[role];
    rows.push([`received.${role}`, stats.received[role], sum(m, 'task_ingress_total', { kind })]);
  }
  for (const [result, n] of Object.entries(stats.claims))
    rows.push([`claims.${result}`, n, sum(m, 'ptm_claim_total', { result })]);
  for (const [result, n] of Object.entries(stats.commits))
    rows.push([`commits.${result}`, n, sum(m, 'ptm_commit_total', { result })]);
  for (const [reason, n] of Object.entries(stats.skipped))
    rows.push([`skipped.${reason}`, n, sum(m, 'message_skipped_total', { reason })]);
  return rows;
}

describe('engine telemetry with real prom-client', () => {
  afterEach(() => promClient.register.clear());

  it('after a faulty crawl stats() and the metrics agree, and a dead letter is counted once', async () => {
    const registry = new promClient.Registry();
    const engine = createChainEngine({
      modules: [shop],
      downloader: site,
      metrics: prometheusMetrics(promClient, { registry }),
      rateLimit: { global: false, perKey: { rate: 10_000, burst: 1000 } },
      downloadRetry: { maxRetries: 1, initialDelayMs: 1, maxDelayMs: 2 },
      nodeRetry: { maxRetries: 1, initialDelayMs: 1, maxDelayMs: 2, jitter: 0 },
      retryPollMs: 2,
    });
    await engine.start();
    await engine.submit({ taskId: 't1', account: 'a', platform: 'web', modules: ['shop'] });
    // a node message of a task that was never submitted: dead-lettered at LoadTask
    await engine.publish({
      kind: 'parser_task',
      body: {
        taskId: 'ghost',
        runId: 'r',
        account: 'a',
        platform: 'web',
        moduleId: 'shop',
        stepIdx: 1,
        prefixRequest: 'GET http://fake/list#0',
      },
    });
    await engine.onIdle();
    await engine.stop();
    const stats = engine.stats();
    const m = await read(registry);

    // the crawl was faulty as intended: 4 items, nodes 3 and 5 failed twice and were given up
    expect(stats.items).toBe(4);
    expect(stats.nodeFailures).toBe(4);
    expect(stats.nodesGivenUp).toBe(2);
    expect(stats.deadLettered).toBe(1);
    for (const [what, stat, metric] of pairs(stats, m)) expect(metric, what).toBe(stat);

    // one dead letter: one series, one count, under the engine's name only
    expect(m.get('mocra_chain_dead_letter_total')).toEqual([
      expect.objectContaining({ labels: { queue: 'parser', reason: 'LoadTask' }, value: 1 }),
    ]);
    expect(sum(m, 'queue_dead_letter_total')).toBe(0);
    expect(sum(m, 'state_expired_total')).toBe(1);
    expect(sum(m, 'task_ingress_failed_total', { stage: 'LoadTask' })).toBe(1);
    // the design's node metrics moved with the crawl
    expect(sum(m, 'parser_failed_total')).toBe(2);
    expect(sum(m, 'parser_success_total')).toBe(5);
    expect(sum(m, 'module_step_generate_total')).toBe(stats.claims.EXECUTE);
    expect(sum(m, 'advance_gate_win_total')).toBe(stats.commits.COMMIT_OK);
    const processed = m.get('mocra_ptm_processing_duration_ms') ?? [];
    const count = (outcome: string): number =>
      processed
        .filter(
          (v) =>
            v.labels.outcome === outcome &&
            (v as { metricName?: string }).metricName?.endsWith('_count'),
        )
        .reduce((t, v) => t + v.value, 0);
    expect(count('committed')).toBe(stats.commits.COMMIT_OK);
    expect(count('failed')).toBe(stats.nodeFailures);

    // every catalog metric is exposed, with the catalog's help text
    const exposed = await registry.getMetricsAsJSON();
    const names = new Set(exposed.map((x) => x.name));
    for (const [name, def] of Object.entries(METRICS)) {
      expect(names.has(`mocra_${name}`), name).toBe(true);
      expect(exposed.find((x) => x.name === `mocra_${name}`)?.help).toBe(def.help);
    }
  });

  it('a second engine on the default registry reuses the registered metrics and records', async () => {
    const run = async (): Promise<void> => {
      const engine = createChainEngine({
        modules: [shop],
        downloader: async (r) =>
          new URL(r.url).pathname === '/list' ? ok({ ids: [1] }) : ok({ id: 1 }),
        metrics: prometheusMetrics(promClient),
        rateLimit: { global: false, perKey: { rate: 10_000, burst: 1000 } },
      });
      await engine.start();
      await engine.submit({ taskId: 't', account: 'a', platform: 'web', modules: ['shop'] });
      await engine.onIdle();
      await engine.stop();
    };
    await run();
    await run();
    const m = await read(promClient.register);
    expect(sum(m, 'items_total')).toBe(2);
    expect(sum(m, 'task_submitted_total')).toBe(2);
  });

  it('reports a label error once through the logger instead of swallowing it', () => {
    const registry = new promClient.Registry();
    const warnings: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn(_fields: unknown, message: string) {
        warnings.push(message);
      },
      error() {},
    };
    const metrics = prometheusMetrics(promClient, { registry, logger });
    metrics.increment('items_total', { module: 'a' });
    metrics.increment('items_total', { shop: 'a' });
    metrics.increment('items_total', { shop: 'b' });
    metrics.observe('items_total', 1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/mocra_items_total/);
  });
});
