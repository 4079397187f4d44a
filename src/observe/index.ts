export { silentLogger, consoleLogger } from './logger.js';
export type { Logger, LogFields, LogLevel, ConsoleLoggerOptions } from './logger.js';
export { InMemoryMetrics, noopMetrics, prometheusMetrics } from './metrics.js';
export { METRICS, MetricName } from './metric-names.js';
export type { MetricDefinition, MetricNameValue } from './metric-names.js';
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
  PromRegistryLike,
  PrometheusMetricsOptions,
} from './metrics.js';
