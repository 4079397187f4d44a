/**
 * The metrics interface every mocra module reports to, an in-memory implementation (handy in
 * tests and for end-of-run summaries) and an adapter for prom-client.
 */
import { invalid } from '../internal/validate.js';
import { readLogger, type Logger } from './logger.js';
import { METRICS, type MetricDefinition } from './metric-names.js';

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
  let names: string[];
  try {
    names = Object.keys(labels);
  } catch {
    return invalid('InMemoryMetrics', 'labels', 'a readable object of label values', labels);
  }
  if (names.length === 0) return name;
  names.sort();
  return `${name}{${names.map((n) => `${n}=${JSON.stringify(labelValue(n, readLabel(labels, n)))}`).join(',')}}`;
}

function readLabel(labels: MetricLabels, label: string): unknown {
  try {
    return labels[label];
  } catch {
    return invalid('InMemoryMetrics', `labels.${label}`, 'a readable label value', undefined);
  }
}

/** A label value as text: strings, numbers and booleans; anything else is a ConfigError. */
function labelValue(label: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return invalid('InMemoryMetrics', `labels.${label}`, 'a string', value);
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
export interface PromMetricConfig<R extends PromRegistryLike = PromRegistryLike> {
  /** Metric name, with the prefix. */
  name: string;
  /** Help text (from the metric catalog). */
  help: string;
  /** Label names (from the metric catalog; for a metric not in it, from its first use). */
  labelNames: string[];
  /** Histogram buckets (histograms only). */
  buckets?: number[];
  /** Registries to register in (absent: prom-client's default registry). */
  registers?: R[];
}

/** A prom-client metric class, e.g. `Counter`. */
export interface PromMetricClass<M, R extends PromRegistryLike = PromRegistryLike> {
  /** Creates and registers the metric. */
  new (config: PromMetricConfig<R>): M;
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

/** The part of a prom-client Registry the adapter uses. */
export interface PromRegistryLike {
  /** The metric registered under `name`, if any. */
  getSingleMetric(name: string): unknown;
}

/** The parts of prom-client the adapter uses (pass `import * as promClient from 'prom-client'`). */
export interface PromClientLike<R extends PromRegistryLike = PromRegistryLike> {
  /** prom-client's Counter class. */
  Counter: PromMetricClass<PromCounterLike, R>;
  /** prom-client's Histogram class. */
  Histogram: PromMetricClass<PromHistogramLike, R>;
  /** prom-client's Gauge class. */
  Gauge: PromMetricClass<PromGaugeLike, R>;
  /** prom-client's default registry (where metrics go when no `registry` is given). */
  register?: PromRegistryLike;
}

/** Options of {@link prometheusMetrics}. */
export interface PrometheusMetricsOptions<R extends PromRegistryLike = PromRegistryLike> {
  /** Prepended to every metric name. @defaultValue 'mocra_' */
  prefix?: string;
  /** The prom-client Registry to register in. @defaultValue prom-client's default registry */
  registry?: R;
  /** Histogram buckets in ms. @defaultValue [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] */
  buckets?: number[];
  /** Where a registration or label error is reported (once per metric). @defaultValue silent */
  logger?: Logger;
}

type Kind = MetricDefinition['type'];
const METHOD = { counter: 'inc', histogram: 'observe', gauge: 'set' } as const;

/**
 * Adapts prom-client (an optional peer dependency; version 15) to {@link Metrics}. Every metric
 * of the catalog ({@link METRICS}) is registered at once, with its help text and label names; a
 * metric already registered under the same name (e.g. by a second engine on the default
 * registry) is reused. A metric outside the catalog gets the label names of its
 * first use. A registration or label error never reaches the caller: it is reported once per
 * metric through `logger`, and that metric records nothing further on that call.
 *
 * @throws {@link ConfigError} when `client` lacks Counter, Histogram or Gauge.
 * @example
 * ```ts
 * import * as promClient from 'prom-client';
 * const engine = createChainEngine({ metrics: prometheusMetrics(promClient), ... });
 * ```
 */
export function prometheusMetrics<R extends PromRegistryLike>(
  client: PromClientLike<R>,
  options: PrometheusMetricsOptions<R> = {},
): Metrics {
  const W = 'prometheusMetrics';
  for (const cls of ['Counter', 'Histogram', 'Gauge'] as const) {
    if (typeof (client as Partial<PromClientLike> | null)?.[cls] !== 'function')
      invalid(W, `client.${cls}`, "prom-client's metric class", (client as never)?.[cls]);
  }
  const prefix = options.prefix ?? 'mocra_';
  const registry = options.registry ?? client.register;
  const registers = options.registry === undefined ? undefined : [options.registry];
  const buckets = options.buckets ?? [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
  const logger = readLogger(W, 'logger', options.logger);
  /** name → the metric (null: it could not be created; reported). */
  const created = new Map<string, Record<string, unknown> | null>();
  const reported = new Set<string>();
  const report = (name: string, error: unknown): void => {
    if (reported.has(name)) return;
    reported.add(name);
    try {
      logger.warn(
        { metric: prefix + name },
        `prometheusMetrics: metric ${prefix}${name} records nothing: ${String(error)}`,
      );
    } catch {
      // a broken logger never breaks the caller
    }
  };
  const metric = (
    kind: Kind,
    name: string,
    labels: MetricLabels,
  ): Record<string, unknown> | null => {
    let m = created.get(name);
    if (m !== undefined) return m;
    const full = prefix + name;
    const known = (METRICS as Record<string, MetricDefinition | undefined>)[name];
    try {
      if (known !== undefined && known.type !== kind)
        throw new Error(`it is a ${known.type}, not a ${kind}`);
      m = (registry?.getSingleMetric(full) as Record<string, unknown> | undefined) ?? null;
      if (m === null) {
        const config: PromMetricConfig<R> = {
          name: full,
          help: known?.help ?? `mocra metric ${name}`,
          labelNames: known ? [...known.labels] : Object.keys(labels),
        };
        if (kind === 'histogram') config.buckets = buckets;
        if (registers) config.registers = registers;
        const Class =
          kind === 'counter'
            ? client.Counter
            : kind === 'histogram'
              ? client.Histogram
              : client.Gauge;
        m = new Class(config) as unknown as Record<string, unknown>;
      } else if (typeof m[METHOD[kind]] !== 'function') {
        throw new Error(`a metric of another type is registered as ${full}`);
      }
    } catch (error) {
      report(name, error);
      m = null;
    }
    created.set(name, m);
    return m;
  };
  const record = (kind: Kind, name: string, labels: MetricLabels, value: number): void => {
    const m = metric(kind, name, labels);
    if (m === null) return;
    try {
      (m[METHOD[kind]] as (labels: MetricLabels, value: number) => void)({ ...labels }, value);
    } catch (error) {
      report(name, error);
    }
  };
  // every catalog metric is exposed from the start (a counter nobody hit yet reads 0)
  for (const [name, def] of Object.entries(METRICS)) metric(def.type, name, {});
  return {
    increment: (name, labels = {}, by = 1) => record('counter', name, labels, by),
    observe: (name, value, labels = {}) => record('histogram', name, labels, value),
    gauge: (name, value, labels = {}) => record('gauge', name, labels, value),
  };
}
