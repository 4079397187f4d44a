/**
 * What the engine measures only when it has metrics: the latency and errors of each state
 * transition, the queue gauges, and the download scheduler and caches it creates.
 */
import { describe, expect, it } from 'vitest';
import {
  BackendUnavailableError,
  createChainEngine,
  defineModule,
  InMemoryMetrics,
  LocalBackend,
  LocalChainState,
  type ChainStateStore,
} from '../../../../src/index.js';

const shop = defineModule({
  id: 'shop',
  steps: [
    {
      name: 'list',
      generate: () => [{ url: 'http://fake/list' }],
      parse: () => ({ next: [1, 2] }),
    },
    {
      name: 'item',
      generate: (ctx) => [{ url: `http://fake/item/${String(ctx.input)}` }],
      parse: (r) => ({ items: [r.body] }),
    },
  ],
});

describe('engine measurements', () => {
  it('times every state transition and counts a failing one by its error code', async () => {
    const metrics = new InMemoryMetrics();
    const store = new LocalBackend();
    const real = new LocalChainState(store);
    let failures = 1;
    // the first terminated() check fails as an unreachable backend would: retried, counted
    const state = new Proxy(real, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (property === 'terminated')
          return async (...args: unknown[]) => {
            if (failures-- > 0) throw new BackendUnavailableError('store down');
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as ChainStateStore;
    const engine = createChainEngine({
      modules: [shop],
      store,
      state,
      metrics,
      downloader: async (r) => ({ status: 200, headers: {}, body: r.url }),
      rateLimit: { global: false, perKey: { rate: 10_000, burst: 1000 } },
    });
    await engine.start();
    await engine.submit({ taskId: 't', account: 'a', platform: 'p', modules: ['shop'] });
    await engine.onIdle();
    await engine.stop();

    expect(engine.stats().items).toBe(2);
    const claims = metrics.histogram('state_script_duration_ms', { script: 'claim' });
    expect(claims?.count).toBe(metrics.counterTotal('ptm_claim_total'));
    expect(metrics.histogram('state_script_duration_ms', { script: 'commitSuccess' })?.count).toBe(
      3,
    );
    // only the list node persists requests (for its children's fallback): the leaves, which
    // have no children, run no key-index transition
    expect(metrics.histogram('state_script_duration_ms', { script: 'indexRunKeys' })?.count).toBe(
      1,
    );
    expect(
      metrics.counter('state_script_error_total', {
        script: 'terminated',
        kind: 'BACKEND_UNAVAILABLE',
      }),
    ).toBe(1);
    expect(metrics.counter('task_ingress_failed_total', { stage: 'ThresholdPreCheck' })).toBe(1);
    // queue gauges: read on receive and settle; all settled at the end
    for (const queue of ['task', 'parser']) {
      expect(metrics.gaugeValue('queue_depth', { queue })).toBe(0);
      expect(metrics.gaugeValue('queue_in_flight', { queue })).toBe(0);
    }
    // the download scheduler and the task-record cache the engine created report too
    expect(metrics.histogram('scheduler_wait_ms', { scheduler: 'chain_download' })?.count).toBe(3);
    expect(metrics.counter('cache_hit_total', { cache: 'chain_task_record' })).toBe(
      engine.stats().cacheHits,
    );
    expect(
      metrics.counter('rate_limit_decision_total', { limiter: 'default', decision: 'allowed' }),
    ).toBe(3);
  });
});
