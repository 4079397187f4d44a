export { silentLogger } from './logger.js';
export type { Logger, LogFields } from './logger.js';
export { InMemoryMetrics, noopMetrics, prometheusMetrics } from './metrics.js';
export type {
  Metrics,
  MetricLabels,
  ObservationSummary,
  PromClientLike,
  PromMetricConfig,
  PromMetricClass,
  PromCounterLike,
  PromHistogramLike,
  PromGaugeLike,
  PrometheusMetricsOptions,
} from './metrics.js';
