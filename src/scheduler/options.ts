/**
 * The options of {@link createScheduler}, checked once, and the names the scheduler accepts.
 * @internal
 */
import { MAX_TIMER_DELAY_MS } from '../internal/clock.js';
import {
  hasMethods,
  invalid,
  optionalBoolean,
  optionalNumber,
  optionalString,
  readOptions,
} from '../internal/validate.js';
import { readMetrics, type Metrics } from '../observe/metrics.js';
import {
  PRIORITIES,
  type SchedulerEvents,
  type SchedulerOptions,
  type SchedulerRateLimiter,
} from './types.js';

/** Priority names to levels (a Map: no inherited key such as `constructor` is a priority). */
export const PRIORITY_INDEX: ReadonlyMap<unknown, number> = new Map<unknown, number>(
  PRIORITIES.map((name, level) => [name, level]),
);

/** The options `submit` takes. */
export const SUBMIT_KEYS = ['priority', 'key', 'signal', 'timeoutMs', 'id', 'cost'];

/** The events `on` takes. */
export const EVENT_NAMES: readonly (keyof SchedulerEvents)[] = [
  'taskStarted',
  'taskSettled',
  'idle',
  'error',
];

/** {@link SchedulerOptions} with every default filled in (0: off). */
export interface ResolvedSchedulerOptions {
  maxConcurrent: number;
  queueCapacity: number;
  defaultTimeoutMs: number;
  agingMs: number;
  keyConcurrency: number;
  rateLimiter: SchedulerRateLimiter | undefined;
  paused: boolean;
  /** Where depth and waits are reported (undefined: nowhere). */
  metrics: Metrics | undefined;
  /** The `scheduler` label of its metrics. */
  name: string;
}

/** Checks the scheduler's options (ConfigError naming the field) and fills in the defaults. */
export function readSchedulerOptions(options: SchedulerOptions): ResolvedSchedulerOptions {
  const where = 'createScheduler';
  const o = readOptions(where, options, [
    'maxConcurrent',
    'queueCapacity',
    'defaultTimeoutMs',
    'agingMs',
    'keyConcurrency',
    'rateLimiter',
    'paused',
    'metrics',
    'name',
  ]);
  if (o.rateLimiter !== undefined && !hasMethods(o.rateLimiter, ['acquire']))
    invalid(where, 'rateLimiter', 'an object with an acquire(key, options) method', o.rateLimiter);
  return {
    maxConcurrent: optionalNumber(where, 'maxConcurrent', o.maxConcurrent, 10, {
      integer: true,
      min: 1,
    }),
    queueCapacity: optionalNumber(where, 'queueCapacity', o.queueCapacity, 1000, {
      integer: true,
      min: 0,
      allowInfinity: true,
    }),
    defaultTimeoutMs: optionalNumber(where, 'defaultTimeoutMs', o.defaultTimeoutMs, 0, {
      integer: true,
      min: 1,
      max: MAX_TIMER_DELAY_MS,
    }),
    agingMs: optionalNumber(where, 'agingMs', o.agingMs, 0, { integer: true, min: 1 }),
    keyConcurrency: optionalNumber(where, 'keyConcurrency', o.keyConcurrency, 0, {
      integer: true,
      min: 1,
    }),
    rateLimiter: o.rateLimiter,
    paused: optionalBoolean(where, 'paused', o.paused, false),
    metrics: readMetrics(where, o.metrics),
    name: optionalString(where, 'name', o.name, 'scheduler'),
  };
}
