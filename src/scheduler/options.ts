/**
 * The options of {@link createScheduler} (checked once) and of each submit, and the names the
 * scheduler accepts.
 * @internal
 */
import { MAX_TIMER_DELAY_MS } from '../internal/clock.js';
import {
  hasMethods,
  invalid,
  optionalBoolean,
  optionalNumber,
  optionalSignal,
  optionalString,
  readOptions,
} from '../internal/validate.js';
import { readMetrics, type Metrics } from '../observe/metrics.js';
import {
  PRIORITIES,
  type SchedulerEvents,
  type SchedulerOptions,
  type SchedulerRateLimiter,
  type SubmitOptions,
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

/** {@link SubmitOptions} checked, with every default filled in. */
export interface ResolvedSubmitOptions {
  /** The priority level, 0 (low) to 3 (critical). */
  level: number;
  key: string | undefined;
  timeoutMs: number;
  id: string | undefined;
  signal: AbortSignal | undefined;
  cost: number;
}

/**
 * Checks one submit's options (ConfigError naming the field) and fills in the defaults;
 * `timeoutMs` defaults to the scheduler's `defaultTimeoutMs`.
 */
export function readSubmitOptions(
  options: SubmitOptions | undefined,
  defaultTimeoutMs: number,
): ResolvedSubmitOptions {
  let level = 1;
  let key: string | undefined;
  let timeoutMs = defaultTimeoutMs;
  let id: string | undefined;
  let cost = 1;
  const o = readOptions('submit', options, SUBMIT_KEYS);
  if (o.priority !== undefined) {
    const found = PRIORITY_INDEX.get(o.priority);
    if (found === undefined) {
      invalid(
        'submit',
        'priority',
        `one of ${PRIORITIES.map((name) => `'${name}'`).join(', ')}`,
        o.priority,
      );
    }
    level = found;
  }
  if (o.key !== undefined) {
    if (typeof o.key !== 'string') invalid('submit', 'key', 'a string', o.key);
    key = o.key;
  }
  if (o.timeoutMs !== undefined) {
    timeoutMs = optionalNumber('submit', 'timeoutMs', o.timeoutMs, 0, {
      integer: true,
      min: 1,
      max: MAX_TIMER_DELAY_MS,
    });
  }
  if (o.id !== undefined) {
    if (typeof o.id !== 'string' || o.id.length === 0)
      invalid('submit', 'id', 'a non-empty string', o.id);
    id = o.id;
  }
  if (o.cost !== undefined)
    cost = optionalNumber('submit', 'cost', o.cost, 1, { integer: true, min: 0 });
  const signal = optionalSignal('submit', 'signal', o.signal);
  return { level, key, timeoutMs, id, signal, cost };
}
