/**
 * The options of a Redis Stream queue: its tuning options, documented and checked in one place
 * for `RedisStreamQueue` and `createRedisStreamQueues`, and the options of `RedisStreamQueue`.
 */
import type { Cluster, Redis } from 'ioredis';
import { invalid, optionalNumber } from '../internal/validate.js';
import { MAX_TIMER_DELAY_MS } from '../internal/clock.js';
import { noopMetrics, type Metrics } from '../observe/metrics.js';

/**
 * The one default of `claimIdleMs` (every Redis Stream queue, `createRedisStreamQueues`): a
 * dead worker's deliveries run again within about 30 s. It stays above the engine's default
 * `leaseMs` (20 s), so by then the node's lease has run out and the new worker can claim it.
 */
export const DEFAULT_CLAIM_IDLE_MS = 30_000;

/** How a Redis Stream queue behaves: bounds, take-over, reads and time limits. */
export interface StreamQueueTuning {
  /** Most entries in each stream before producers wait (soft across processes). @defaultValue 10000 */
  capacity?: number;
  /**
   * A delivery left idle this long (ms) — its worker died, hangs, or stopped in the middle of
   * it — is taken over by another consumer (a running chain node keeps its delivery alive with
   * each lease renewal, so a slow node is not); consumers idle this long holding nothing are
   * removed from the group. With the chain engine keep it **above the engine's `leaseMs`**: the
   * node's lease has then expired and the new worker can claim it (sooner, it would only meet
   * `LOCKED_BY_OTHER`). @defaultValue 30000 (the engine's default lease is 20000)
   */
  claimIdleMs?: number;
  /** Deliveries after which an entry is dead-lettered by the queue itself. @defaultValue 5 */
  maxDeliveries?: number;
  /** Most entries kept in the dead-letter stream (the oldest go first). @defaultValue 10000 */
  deadLetterMaxLen?: number;
  /**
   * Dead letters older than this (ms, by entry id against this process's clock) are trimmed as
   * new ones are added. @defaultValue 604800000 (7 days)
   */
  deadLetterMaxAgeMs?: number;
  /** Longest block of one read in ms; also the longest wait of `shutdown()`. @defaultValue 1000 */
  blockMs?: number;
  /** Poll period of a producer waiting for room, in ms. @defaultValue 25 */
  pollMs?: number;
  /**
   * Longest wait for Redis to answer one command, in ms (a blocking read gets `blockMs` more);
   * then the call fails with a retryable BackendUnavailableError. The command is not sent again
   * (it may still run). 0 turns the bound off. @defaultValue 5000
   */
  commandTimeoutMs?: number;
  /** Where back-pressure, reclaim and dead-letter counters go. @defaultValue noopMetrics */
  metrics?: Metrics;
}

/** The names of the {@link StreamQueueTuning} options. */
export const TUNING_KEYS = [
  'capacity',
  'claimIdleMs',
  'maxDeliveries',
  'deadLetterMaxLen',
  'deadLetterMaxAgeMs',
  'blockMs',
  'pollMs',
  'commandTimeoutMs',
  'metrics',
] as const;

/** Checks the tuning options (ConfigError naming the field) and fills in the defaults. */
export function readStreamQueueTuning(
  where: string,
  o: StreamQueueTuning,
): Required<StreamQueueTuning> {
  const metrics = o.metrics ?? noopMetrics;
  if (metrics === null || typeof metrics !== 'object' || typeof metrics.increment !== 'function')
    invalid(where, 'metrics', 'a Metrics (increment/observe/gauge)', o.metrics);
  return {
    capacity: optionalNumber(where, 'capacity', o.capacity, 10_000, {
      integer: true,
      min: 1,
      allowInfinity: true,
    }),
    claimIdleMs: optionalNumber(where, 'claimIdleMs', o.claimIdleMs, DEFAULT_CLAIM_IDLE_MS, {
      integer: true,
      min: 1,
    }),
    maxDeliveries: optionalNumber(where, 'maxDeliveries', o.maxDeliveries, 5, {
      integer: true,
      min: 1,
    }),
    deadLetterMaxLen: optionalNumber(where, 'deadLetterMaxLen', o.deadLetterMaxLen, 10_000, {
      integer: true,
      min: 1,
    }),
    deadLetterMaxAgeMs: optionalNumber(
      where,
      'deadLetterMaxAgeMs',
      o.deadLetterMaxAgeMs,
      7 * 86_400_000,
      { integer: true, min: 1 },
    ),
    blockMs: optionalNumber(where, 'blockMs', o.blockMs, 1_000, { integer: true, min: 1 }),
    pollMs: optionalNumber(where, 'pollMs', o.pollMs, 25, { integer: true, min: 1 }),
    commandTimeoutMs: optionalNumber(where, 'commandTimeoutMs', o.commandTimeoutMs, 5_000, {
      integer: true,
      min: 0,
      max: MAX_TIMER_DELAY_MS,
    }),
    metrics,
  };
}

/** Options of `RedisStreamQueue`; the tuning options are those of {@link StreamQueueTuning}. */
export interface RedisStreamQueueOptions<T> extends StreamQueueTuning {
  /**
   * An ioredis client: a `Redis` (one server or a primary) or a `Cluster`. The queue duplicates
   * it for its blocking reads (and closes the duplicate on shutdown); it never closes `client`.
   */
  client: Redis | Cluster;
  /** Queue name for metrics and errors. */
  name: string;
  /** The stream key (full key: build it with the key builder). */
  key: string;
  /** The dead-letter stream key. */
  deadLetterKey: string;
  /** Consumer group name, shared by every process. */
  group: string;
  /** This consumer's name, unique per process. */
  consumer: string;
  /** Encodes a message to the stream payload. */
  encode: (message: T) => string;
  /** Decodes a payload; throwing dead-letters the entry with the error's message as reason. */
  decode: (payload: string) => T;
}
