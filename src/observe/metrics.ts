/**
 * The metrics interface every mocra module reports to, an in-memory implementation (handy in
 * tests and for end-of-run summaries) and an adapter for prom-client.
 */

import { invalid } from '../internal/validate.js';

/** Label values of one series, e.g. `{ result: 'EXECUTE' }`. */
export type MetricLabels = Readonly<Record<string, string>>;

/**
 * Where mocra reports counters and timings. Implementations must be cheap and must never throw.
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client';
 * const metrics = prometheusMetrics(promClient, { prefix: 'crawler_' });
 * ```
 */
export interface Metrics {
  /** Adds `by` (default 1) to the counter `name` for `labels`. */
  increment(name: string, labels?: MetricLabels, by?: number): void;
  /** Records one observation (a duration in ms, a size) of the histogram `name`. */
  observe(name: string, value: number, labels?: MetricLabels): void;
  /** Sets the gauge `name` to `value`. */
  gauge(name: string, value: number, labels?: MetricLabels): void;
}

const noop = (): void => {};

/** Metrics that record nothing: the default everywhere. */
export const noopMetrics: Metrics = Object.freeze({ increment: noop, observe: noop, gauge: noop });

/**
 * Reads an optional `metrics` option: undefined when absent or {@link noopMetrics} (so callers
 * skip the work of measuring), else the Metrics.
 * @throws {@link ConfigError} naming `metrics` when it lacks increment/observe/gauge.
 * @internal
 */
export function readMetrics(where: string, value: unknown): Metrics | undefined {
  if (value === undefined || value === noopMetrics) return undefined;
  const m = value as Partial<Metrics> | null;
  if (
    m === null ||
    typeof m !== 'object' ||
    typeof m.increment !== 'function' ||
    typeof m.observe !== 'function' ||
    typeof m.gauge !== 'function'
  )
    invalid(where, 'metrics', 'a Metrics (increment/observe/gauge)', value);
  return m as Metrics;
}

function seriesKey(name: string, labels: MetricLabels | undefined): string {
  if (!labels) return name;
  const names = Object.keys(labels);
  if (names.length === 0) return name;
  names.sort();
  return `${name}{${names.map((n) => `${n}=${JSON.stringify(labels[n])}`).join(',')}}`;
}

/** A summary of one histogram series kept by {@link InMemoryMetrics}. */
export interface ObservationSummary {
  /** Observations recorded. */
  count: number;
  /** Sum of the observations. */
  sum: number;
  /** Smallest observation. */
  min: number;
  /** Largest observation. */
  max: number;
}

/**
 * Metrics kept in memory, readable with {@link InMemoryMetrics.counter}. Used by tests and by
 * end-of-run summaries; series are keyed by name and sorted labels.
 *
 * @example
 * ```ts
 * const metrics = new InMemoryMetrics();
 * metrics.increment('ptm_claim_total', { result: 'EXECUTE' });
 * metrics.counter('ptm_claim_total', { result: 'EXECUTE' }); // 1
 * ```
 */
export class InMemoryMetrics implements Metrics {
  readonly #counters = new Map<string, number>();
  readonly #gauges = new Map<string, number>();
  readonly #histograms = new Map<string, ObservationSummary>();

  increment(name: string, labels?: MetricLabels, by = 1): void {
    const key = seriesKey(name, labels);
    this.#counters.set(key, (this.#counters.get(key) ?? 0) + by);
  }

  observe(name: string, value: number, labels?: MetricLabels): void {
    const key = seriesKey(name, labels);
    const s = this.#histograms.get(key);
    if (s) {
      s.count++;
      s.sum += value;
      if (value < s.min) s.min = value;
      if (value > s.max) s.max = value;
    } else {
      this.#histograms.set(key, { count: 1, sum: value, min: value, max: value });
    }
  }

  gauge(name: string, value: number, labels?: MetricLabels): void {
    this.#gauges.set(seriesKey(name, labels), value);
  }

  /** The value of one counter series (0 when never incremented). */
  counter(name: string, labels?: MetricLabels): number {
    return this.#counters.get(seriesKey(name, labels)) ?? 0;
  }

  /** The sum of a counter over every label combination. */
  counterTotal(name: string): number {
    let total = 0;
    for (const [key, value] of this.#counters) {
      if (key === name || key.startsWith(`${name}{`)) total += value;
    }
    return total;
  }

  /** The last value of a gauge series, or undefined. */
  gaugeValue(name: string, labels?: MetricLabels): number | undefined {
    return this.#gauges.get(seriesKey(name, labels));
  }

  /** The summary of a histogram series, or undefined. */
  histogram(name: string, labels?: MetricLabels): Readonly<ObservationSummary> | undefined {
    return this.#histograms.get(seriesKey(name, labels));
  }

  /** Every counter series as `{ 'name{label="v"}': value }`. */
  counters(): Record<string, number> {
    return Object.fromEntries(this.#counters);
  }

  /** Forgets every series. */
  reset(): void {
    this.#counters.clear();
    this.#gauges.clear();
    this.#histograms.clear();
  }
}

/** The configuration mocra passes to prom-client metric constructors. */
export interface PromMetricConfig {
  /** Metric name, with the prefix. */
  name: string;
  /** Help text. */
  help: string;
  /** Label names, from the metric's first use. */
  labelNames: string[];
  /** Histogram buckets (histograms only). */
  buckets?: number[];
  /** Registries to register in. */
  registers?: unknown[];
}

/** A prom-client metric class, e.g. `Counter`. */
export interface PromMetricClass<M> {
  /** Creates and registers the metric. */
  new (config: PromMetricConfig): M;
}

/** The part of a prom-client Counter the adapter uses. */
export interface PromCounterLike {
  /** Adds `value` (default 1) for `labels`. */
  inc(labels: Record<string, string>, value?: number): void;
}

/** The part of a prom-client Histogram the adapter uses. */
export interface PromHistogramLike {
  /** Records one observation for `labels`. */
  observe(labels: Record<string, string>, value: number): void;
}

/** The part of a prom-client Gauge the adapter uses. */
export interface PromGaugeLike {
  /** Sets the gauge for `labels`. */
  set(labels: Record<string, string>, value: number): void;
}

/** The parts of prom-client the adapter uses (pass `import * as promClient from 'prom-client'`). */
export interface PromClientLike {
  /** prom-client's Counter class. */
  Counter: PromMetricClass<PromCounterLike>;
  /** prom-client's Histogram class. */
  Histogram: PromMetricClass<PromHistogramLike>;
  /** prom-client's Gauge class. */
  Gauge: PromMetricClass<PromGaugeLike>;
}

/** Options of {@link prometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /** Prepended to every metric name. @defaultValue 'mocra_' */
  prefix?: string;
  /** The prom-client Registry to register in. @defaultValue prom-client's global registry */
  registry?: unknown;
  /** Histogram buckets in ms. @defaultValue [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] */
  buckets?: number[];
}

/**
 * Adapts prom-client (an optional peer dependency) to {@link Metrics}. Each metric is created
 * on first use with the label names of that first use; later uses must pass the same names.
 *
 * @example
 * ```ts
 * import * as promClient from 'prom-client';
 * const engine = createChainEngine({ metrics: prometheusMetrics(promClient), ... });
 * ```
 */
export function prometheusMetrics(
  client: PromClientLike,
  options: PrometheusMetricsOptions = {},
): Metrics {
  const prefix = options.prefix ?? 'mocra_';
  const registers = options.registry === undefined ? undefined : [options.registry];
  const buckets = options.buckets ?? [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
  const counters = new Map<string, PromCounterLike>();
  const histograms = new Map<string, PromHistogramLike>();
  const gauges = new Map<string, PromGaugeLike>();
  const help = (name: string): string => `mocra metric ${name}`;
  const safe = (fn: () => void): void => {
    try {
      fn();
    } catch {
      // a metrics failure (e.g. label mismatch) must never break the caller
    }
  };
  return {
    increment(name, labels = {}, by = 1) {
      safe(() => {
        let c = counters.get(name);
        if (!c) {
          c = new client.Counter({
            name: prefix + name,
            help: help(name),
            labelNames: Object.keys(labels),
            registers,
          });
          counters.set(name, c);
        }
        c.inc({ ...labels }, by);
      });
    },
    observe(name, value, labels = {}) {
      safe(() => {
        let h = histograms.get(name);
        if (!h) {
          h = new client.Histogram({
            name: prefix + name,
            help: help(name),
            labelNames: Object.keys(labels),
            buckets,
            registers,
          });
          histograms.set(name, h);
        }
        h.observe({ ...labels }, value);
      });
    },
    gauge(name, value, labels = {}) {
      safe(() => {
        let g = gauges.get(name);
        if (!g) {
          g = new client.Gauge({
            name: prefix + name,
            help: help(name),
            labelNames: Object.keys(labels),
            registers,
          });
          gauges.set(name, g);
        }
        g.set({ ...labels }, value);
      });
    },
  };
}
