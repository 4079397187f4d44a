/**
 * A dead letter on shared Redis Stream queues, with one real prom-client registry for the
 * engine and the queues: the engine counts it once (chain_dead_letter_total{queue,reason}) and
 * the queue once (queue_dead_letter_total{queue}). Before, both used dead_letter_total with
 * different label sets, and prom-client refused one of them.
 */
import { expect, it } from 'vitest';
import * as promClient from 'prom-client';
import {
  RedisBackend,
  createChainEngine,
  createRedisStreamQueues,
  defineModule,
  prometheusMetrics,
} from '../../../src/index.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

const noop = defineModule({
  id: 'noop',
  steps: [{ name: 'only', generate: () => [], parse: () => ({}) }],
});

describeRedis('dead letters and metrics on Redis Stream queues', () => {
  const redis = useRedis();

  it('count one dead letter once per counter, under two names, in one registry', async () => {
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
    const store = new RedisBackend({ redis: redis.client(), keyPrefix: redis.prefix });
    const queues = createRedisStreamQueues({
      client: redis.client(),
      keyPrefix: redis.prefix,
      consumer: 'w1',
      blockMs: 50,
      metrics,
    });
    const engine = createChainEngine({ modules: [noop], store, queues, workerId: 'w1', metrics });
    await engine.start();
    await engine.publish('{ not json');
    const deadline = Date.now() + 10_000;
    while ((await queues.task.deadLetters()).length < 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    await engine.stop();
    await Promise.all(Object.values(queues).map((q) => q.shutdown()));

    const values = async (name: string) =>
      (await registry.getSingleMetric(`mocra_${name}`)?.get())?.values ?? [];
    expect(engine.stats().deadLettered).toBe(1);
    expect(await values('chain_dead_letter_total')).toEqual([
      expect.objectContaining({ labels: { queue: 'task', reason: 'NormalizeInput' }, value: 1 }),
    ]);
    expect(await values('queue_dead_letter_total')).toEqual([
      expect.objectContaining({ labels: { queue: 'task' }, value: 1 }),
    ]);
    expect(warnings).toEqual([]);
  });
});
