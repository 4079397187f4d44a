/**
 * Public option types of the rate limiter and their validation into a frozen resolved form.
 * @internal
 */
import type { Clock } from '../internal/clock.js';
import { monotonicClock } from '../internal/clock.js';
import {
  invalid,
  invalidCombination,
  optionalClock,
  optionalFunction,
  optionalNumber,
  optionalString,
  readOptions,
  requireNumber,
} from '../internal/validate.js';
import { readMetrics, type Metrics } from '../observe/metrics.js';
import type { CacheService } from '../store/types.js';

/**
 * One token bucket: `rate` tokens are added every `intervalMs`, and at most `burst` tokens can
 * be spent at once.
 *
 * @example
 * ```ts
 * const perHost: BucketOptions = { rate: 20, intervalMs: 1000, burst: 5 }; // 20/s, bursts of 5
 * ```
 */
export interface BucketOptions {
  /**
   * Tokens added per `intervalMs` (a finite number > 0; fractions allowed, e.g. `0.5` per
   * second). At most 1,000 tokens per millisecond.
   */
  rate: number;
  /** The period `rate` refers to, in milliseconds (integer >= 1). @defaultValue 1000 */
  intervalMs?: number;
  /**
   * The most tokens that can be spent at once after an idle period (integer >= 1). A single
   * call may never cost more than this.
   * @defaultValue `max(1, floor(rate))`
   */
  burst?: number;
}

/**
 * Options of {@link RateLimiter}.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({
 *   global: { rate: 100 },                 // 100/s across all keys
 *   perKey: { rate: 20, burst: 5 },        // 20/s per key, bursts of 5
 *   overrides: { 'slow-api': { rate: 2 } },
 *   jitterMs: 25,
 * });
 * ```
 */
export interface RateLimiterOptions {
  /**
   * The bucket every call draws from, whatever its key; `false` for none.
   * @defaultValue `{ rate: 100, intervalMs: 1000 }`
   */
  global?: BucketOptions | false;
  /**
   * The bucket each key gets; `false` for none (keys listed in `overrides` still get theirs).
   * @defaultValue `{ rate: 20, intervalMs: 1000 }`
   */
  perKey?: BucketOptions | false;
  /** Per-key buckets that replace `perKey` for the keys named. @defaultValue `{}` */
  overrides?: Record<string, BucketOptions>;
  /**
   * The most random extra wait, in milliseconds, added to each wake-up of
   * {@link RateLimiter.acquire} so that many waiters do not wake in one burst (finite >= 0).
   * @defaultValue 0
   */
  jitterMs?: number;
  /**
   * Where bucket state lives. A store in `'distributed'` mode (the Redis backend) makes every
   * limiter with the same `name` on that Redis share one budget, with time taken from the Redis
   * server; a `'single_node'` store (or none) keeps state in this process.
   * @defaultValue in-process state
   */
  store?: CacheService;
  /**
   * Names this limiter's state in a shared store, so that several limiters can use one Redis.
   * Letters, digits and `._:-` only (1 to 64 characters).
   * @defaultValue 'default'
   */
  name?: string;
  /**
   * Time source, in milliseconds, for the in-process store and for measuring waits.
   * @defaultValue `performance.now()`
   */
  clock?: Clock;
  /** Random number source in [0, 1) for jitter (tests pass a fixed one). @defaultValue Math.random */
  random?: () => number;
  /**
   * Where decisions and waits are reported (`rate_limit_decision_total{limiter,decision}`,
   * `rate_limit_wait_ms{limiter}`, labelled with `name`). @defaultValue none
   */
  metrics?: Metrics;
}

/** A bucket with its GCRA parameters in integer microseconds. @internal */
export interface ResolvedBucket {
  readonly rate: number;
  readonly intervalMs: number;
  readonly burst: number;
  /** Emission interval: microseconds per token (integer >= 1, rounded up so the rate is never exceeded). */
  readonly emissionUs: number;
  /** Delay tolerance: `burst * emissionUs`. */
  readonly toleranceUs: number;
}

/** Validated, frozen options. @internal */
export interface ResolvedRateLimiterOptions {
  readonly global: ResolvedBucket | null;
  readonly perKey: ResolvedBucket | null;
  readonly overrides: ReadonlyMap<string, ResolvedBucket>;
  readonly jitterMs: number;
  readonly store: CacheService | undefined;
  readonly name: string;
  readonly clock: Clock;
  readonly random: () => number;
  readonly metrics: Metrics | undefined;
}

const WHERE = 'RateLimiter';
/** Largest tolerance accepted, so that `now + tolerance` stays far below 2^53 µs. */
const MAX_TOLERANCE_US = 2 ** 50;
const NAME_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/** Default global bucket: 100 per second. */
export const DEFAULT_GLOBAL: BucketOptions = Object.freeze({ rate: 100, intervalMs: 1000 });
/** Default per-key bucket: 20 per second. */
export const DEFAULT_PER_KEY: BucketOptions = Object.freeze({ rate: 20, intervalMs: 1000 });

/** Validates one bucket's options. @internal */
export function resolveBucket(field: string, value: unknown): ResolvedBucket {
  const raw = readOptions<BucketOptions>(
    WHERE,
    value as BucketOptions,
    ['rate', 'intervalMs', 'burst'],
    field,
  );
  if (value === undefined) invalid(WHERE, field, 'an object', value);
  const rate = requireNumber(WHERE, `${field}.rate`, raw.rate, { greaterThan: 0 });
  const intervalMs = optionalNumber(WHERE, `${field}.intervalMs`, raw.intervalMs, 1000, {
    integer: true,
    min: 1,
  });
  const burst = optionalNumber(WHERE, `${field}.burst`, raw.burst, Math.max(1, Math.floor(rate)), {
    integer: true,
    min: 1,
  });
  const emissionUs = Math.ceil((intervalMs * 1000) / rate);
  if (rate > intervalMs * 1000) {
    invalidCombination(
      WHERE,
      [`${field}.rate`, `${field}.intervalMs`],
      `\`${field}.rate\` (${rate}) per \`${field}.intervalMs\` (${intervalMs}) is more than 1000 tokens per millisecond`,
    );
  }
  const toleranceUs = emissionUs * burst;
  if (toleranceUs > MAX_TOLERANCE_US) {
    invalidCombination(
      WHERE,
      [`${field}.burst`, `${field}.rate`, `${field}.intervalMs`],
      `\`${field}.burst\` (${burst}) tokens take ${Math.round(toleranceUs / 1e6)} s to refill; the limit is ${MAX_TOLERANCE_US / 1e6} s`,
    );
  }
  return Object.freeze({ rate, intervalMs, burst, emissionUs, toleranceUs });
}

function resolveOptional(
  field: string,
  value: unknown,
  fallback: BucketOptions,
): ResolvedBucket | null {
  if (value === false) return null;
  if (value === undefined) return resolveBucket(field, fallback);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    invalid(WHERE, field, 'an object ({ rate, intervalMs?, burst? }) or false', value);
  }
  return resolveBucket(field, value);
}

/** Validates {@link RateLimiterOptions} once. @internal */
export function resolveRateLimiterOptions(
  options: RateLimiterOptions | undefined,
): ResolvedRateLimiterOptions {
  const raw = readOptions(WHERE, options, [
    'global',
    'perKey',
    'overrides',
    'jitterMs',
    'store',
    'name',
    'clock',
    'random',
    'metrics',
  ]);
  const global = resolveOptional('global', raw.global, DEFAULT_GLOBAL);
  const perKey = resolveOptional('perKey', raw.perKey, DEFAULT_PER_KEY);
  const overrides = new Map<string, ResolvedBucket>();
  if (raw.overrides !== undefined) {
    const o = raw.overrides as unknown;
    if (o === null || typeof o !== 'object' || Array.isArray(o)) {
      invalid(WHERE, 'overrides', 'an object mapping keys to bucket options', o);
    }
    for (const [key, bucket] of Object.entries(o as Record<string, unknown>)) {
      const field = `overrides[${JSON.stringify(key)}]`;
      if (bucket === null || typeof bucket !== 'object' || Array.isArray(bucket)) {
        invalid(WHERE, field, 'an object ({ rate, intervalMs?, burst? })', bucket);
      }
      overrides.set(key, resolveBucket(field, bucket));
    }
  }
  const jitterMs = optionalNumber(WHERE, 'jitterMs', raw.jitterMs, 0, { min: 0 });
  const store = raw.store;
  if (store !== undefined) {
    const s = store as unknown as { mode?: unknown };
    if (
      s === null ||
      typeof s !== 'object' ||
      (s.mode !== 'distributed' && s.mode !== 'single_node')
    ) {
      invalid(WHERE, 'store', "a CacheService (mode 'distributed' or 'single_node')", store);
    }
    if (
      s.mode === 'distributed' &&
      typeof (s as { runScript?: unknown }).runScript !== 'function'
    ) {
      invalid(
        WHERE,
        'store',
        'a distributed CacheService with runScript() (the Redis backend)',
        store,
      );
    }
  }
  const name = optionalString(WHERE, 'name', raw.name, 'default');
  if (!NAME_PATTERN.test(name)) {
    invalid(WHERE, 'name', '1 to 64 of the characters A-Z a-z 0-9 . _ : -', name);
  }
  const clock = optionalClock(WHERE, 'clock', raw.clock, monotonicClock);
  const random = optionalFunction<() => number>(WHERE, 'random', raw.random) ?? Math.random;
  const metrics = readMetrics(WHERE, raw.metrics);
  return Object.freeze({
    global,
    perKey,
    overrides,
    jitterMs,
    store,
    name,
    clock,
    random,
    metrics,
  });
}
