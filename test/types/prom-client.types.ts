/**
 * Type test (checked by `npm run typecheck`, not run): prometheusMetrics accepts prom-client 15
 * as it is — the module namespace, a Registry — and refuses what is not a metric client.
 */
import * as promClient from 'prom-client';
import { Registry } from 'prom-client';
import { prometheusMetrics, type Metrics } from '../../src/observe/metrics.js';

export const onDefault: Metrics = prometheusMetrics(promClient);
export const onRegistry: Metrics = prometheusMetrics(promClient, {
  prefix: 'crawler_',
  registry: new Registry(),
  buckets: [1, 10, 100],
});
export const withLogger: Metrics = prometheusMetrics(promClient, {
  logger: { debug() {}, info() {}, warn() {}, error() {} },
});

// @ts-expect-error a client without metric classes
prometheusMetrics({ register: promClient.register });
// @ts-expect-error a registry must be able to look a metric up
prometheusMetrics(promClient, { registry: {} });
