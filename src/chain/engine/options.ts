/**
 * The engine's options room: reads and validates {@link ChainEngineOptions} (naming the first
 * invalid field), fills in the defaults and builds what the options imply (the store's state
 * machine, the default queues, the rate limiter, the retry policies). The result is frozen.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError } from '../../errors.js';
import {
  invalid,
  invalidCombination,
  optionalBoolean,
  optionalFunction,
  optionalNumber,
  optionalString,
  readOptions,
} from '../../internal/validate.js';
import { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import { namespaceKeyPrefix } from '../../keys/namespace.js';
import { readLogger, type Logger } from '../../observe/logger.js';
import { levelCheck, type LogLevel } from './telemetry.js';
import { noopMetrics, type Metrics } from '../../observe/metrics.js';
import { RateLimiter, type RateLimiterOptions } from '../../rate-limit/index.js';
import { RetryPolicy, type RetryPolicyOptions } from '../../retry/index.js';
import {
  DurableBackend,
  LocalBackend,
  RedisBackend,
  type CacheService,
} from '../../store/index.js';
import { DurableChainState } from '../durable-chain-state.js';
import { durableChainQueues } from '../durable-chain-queues.js';
import { defineModule, type ModuleDefinition } from '../module.js';
import { MemoryQueue } from '../queue.js';
import { RedisStreamQueue } from '../redis-stream-queue.js';
import { createRedisStreamQueues } from '../stream-queues.js';
import { DEFAULT_CLAIM_IDLE_MS } from '../stream-queue-tuning.js';
import { LocalChainState, RedisChainState, type ChainStateStore } from '../state/index.js';
import { describeLimits } from './describe-limits.js';
import { fetchDownloader } from './download.js';
import { writeLog } from './telemetry.js';
import type {
  ChainEngineOptions,
  ChainQueues,
  Downloader,
  ItemRetryOptions,
  NodeRetryOptions,
} from './types.js';

/** The name errors of the engine's options start with. */
export const W = 'createChainEngine';
const DAY = 86_400_000;
const OPTION_KEYS = [
  'modules',
  'downloader',
  'store',
  'state',
  'queues',
  'queueCapacity',
  'allowVolatileQueues',
  'concurrency',
  'rateLimit',
  'downloadRetry',
  'nodeRetry',
  'itemRetry',
  'moduleErrorThreshold',
  'taskErrorThreshold',
  'leaseMs',
  'downloadTimeoutMs',
  'fallback',
  'loadLoginInfo',
  'onItem',
  'keys',
  'stateTtlMs',
  'finishedRunTtlMs',
  'logger',
  'metrics',
  'workerId',
  'retryPollMs',
  'stopTimeoutMs',
  'relayLeaseMs',
  'sweepIntervalMs',
  'sweepWindowMs',
] as const;

/** The engine's options, validated, with every default filled in. @internal */
export interface ResolvedOptions {
  readonly modules: ReadonlyMap<string, ModuleDefinition>;
  readonly downloader: Downloader;
  readonly loadLoginInfo: ChainEngineOptions['loadLoginInfo'];
  readonly onItem: ChainEngineOptions['onItem'];
  readonly logger: Logger;
  /** Whether the logger writes a level (its fields are built only then). */
  readonly logs: (level: LogLevel) => boolean;
  readonly metrics: Metrics;
  readonly keys: ChainKeyBuilder;
  readonly stateTtlMs: number;
  /** TTL of a finished run's state (at most `stateTtlMs`). */
  readonly finishedRunTtlMs: number;
  readonly leaseMs: number;
  readonly downloadTimeoutMs: number;
  readonly fallback: boolean;
  readonly moduleErrorThreshold: number;
  readonly taskErrorThreshold: number;
  readonly retryPollMs: number;
  readonly relayLeaseMs: number;
  readonly sweepIntervalMs: number;
  readonly sweepWindowMs: number;
  readonly stopTimeoutMs: number;
  readonly workerId: string;
  /** Consumers of each queue, and downloads in flight over all modules. */
  readonly concurrency: Readonly<{ task: number; parser: number; error: number; download: number }>;
  readonly store: CacheService;
  /** Whether the engine created the store (and closes it). */
  readonly ownsStore: boolean;
  readonly runtimeMode: 'single_node' | 'distributed';
  readonly state: ChainStateStore;
  readonly queues: ChainQueues;
  /** Whether the engine created the queues (and closes them). */
  readonly ownsQueues: boolean;
  /** Queues shared with other processes (not in-memory, distributed mode). */
  readonly sharedQueues: boolean;
  /** The store is durable: state and queues outlive the process; start() resumes. */
  readonly durable: boolean;
  /** In-memory queues: their messages die with the process. */
  readonly volatileQueues: boolean;
  /** In-memory queues over a store that outlives the process (allowed): record hand-offs. */
  readonly recordHandOffs: boolean;
  readonly limiter: RateLimiter;
  /** The effective download limits, as `start()` logs them. */
  readonly limits: Readonly<Record<string, string>>;
  readonly downloadRetry: RetryPolicy;
  readonly maxNodeRetries: number;
  readonly nodeRetry: RetryPolicy;
  /** Hand-overs of an item whose `onItem` threw, after the first. */
  readonly maxItemRetries: number;
  readonly itemRetry: RetryPolicy;
}

/**
 * Validates the options and builds what they imply.
 * @throws {@link ConfigError} naming the first invalid option.
 * @internal
 */
export function resolveOptions(
  options: ChainEngineOptions,
  onRunFinished?: (taskId: string, runId: string) => void,
): ResolvedOptions {
  const o = readOptions(W, options, OPTION_KEYS);
  if (options === undefined) invalid(W, 'options', 'an object with `modules`', options);
  const modules = readModules(o.modules);
  const downloader = optionalFunction<Downloader>(W, 'downloader', o.downloader) ?? fetchDownloader;
  const loadLoginInfo = optionalFunction<NonNullable<ChainEngineOptions['loadLoginInfo']>>(
    W,
    'loadLoginInfo',
    o.loadLoginInfo,
  );
  const onItem = optionalFunction<NonNullable<ChainEngineOptions['onItem']>>(W, 'onItem', o.onItem);
  const logger = readLogger(W, 'logger', o.logger);
  const metrics = (o.metrics as Metrics | undefined) ?? noopMetrics;
  if (typeof metrics.increment !== 'function')
    invalid(W, 'metrics', 'a Metrics (increment/observe/gauge)', o.metrics);
  const keys = o.keys ?? new ChainKeyBuilder();
  if (!(keys instanceof ChainKeyBuilder)) invalid(W, 'keys', 'a ChainKeyBuilder', o.keys);
  const int = (min: number) => ({ integer: true, min });
  const stateTtlMs = optionalNumber(W, 'stateTtlMs', o.stateTtlMs, 7 * DAY, int(1000));
  const finishedRunTtlMs = Math.min(
    stateTtlMs,
    optionalNumber(W, 'finishedRunTtlMs', o.finishedRunTtlMs, DAY, int(1)),
  );
  const leaseMs = optionalNumber(W, 'leaseMs', o.leaseMs, 20_000, int(10));
  const downloadTimeoutMs = optionalNumber(
    W,
    'downloadTimeoutMs',
    o.downloadTimeoutMs,
    30_000,
    int(1),
  );
  const fallback = optionalBoolean(W, 'fallback', o.fallback, true);
  const moduleErrorThreshold = optionalNumber(
    W,
    'moduleErrorThreshold',
    o.moduleErrorThreshold,
    10,
    int(1),
  );
  const taskErrorThreshold = optionalNumber(
    W,
    'taskErrorThreshold',
    o.taskErrorThreshold,
    25,
    int(1),
  );
  const retryPollMs = optionalNumber(W, 'retryPollMs', o.retryPollMs, 50, int(1));
  const relayLeaseMs = optionalNumber(W, 'relayLeaseMs', o.relayLeaseMs, 30_000, int(10));
  const sweepIntervalMs = optionalNumber(W, 'sweepIntervalMs', o.sweepIntervalMs, 2_000, int(10));
  const sweepWindowMs = optionalNumber(W, 'sweepWindowMs', o.sweepWindowMs, 3_600_000, int(1000));
  const stopTimeoutMs = optionalNumber(W, 'stopTimeoutMs', o.stopTimeoutMs, 10_000, int(0));
  const workerId =
    optionalString(W, 'workerId', o.workerId, undefined) ??
    `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

  const c = readOptions(
    W,
    o.concurrency,
    ['task', 'download', 'publish', 'parser', 'errorTask'],
    'concurrency',
  );
  if (c.publish !== undefined) {
    if (c.download !== undefined)
      invalidCombination(
        W,
        ['concurrency.download', 'concurrency.publish'],
        '`concurrency.publish` is the old name of `concurrency.download`: pass only `download`',
      );
    warnOnce(
      logger,
      'concurrency.publish',
      '`concurrency.publish` is deprecated: use `concurrency.download`',
    );
  }
  const concurrency = Object.freeze({
    task: optionalNumber(W, 'concurrency.task', c.task, 4, int(1)),
    parser: optionalNumber(W, 'concurrency.parser', c.parser, 8, int(1)),
    error: optionalNumber(W, 'concurrency.errorTask', c.errorTask, 2, int(1)),
    download:
      c.publish !== undefined
        ? optionalNumber(W, 'concurrency.publish', c.publish, 16, int(1))
        : optionalNumber(W, 'concurrency.download', c.download, 16, int(1)),
  });

  // store, runtime mode, state machine
  if (
    o.store !== undefined &&
    (typeof o.store !== 'object' || o.store === null || !('mode' in o.store))
  )
    invalid(W, 'store', 'a CacheService', o.store);
  const ownsStore = o.store === undefined;
  const store = o.store ?? new LocalBackend();
  const runtimeMode = store.mode === 'distributed' ? 'distributed' : 'single_node';
  let state: ChainStateStore;
  if (o.state !== undefined) {
    if (typeof o.state !== 'object' || o.state === null || typeof o.state.claim !== 'function')
      invalid(W, 'state', 'a ChainStateStore', o.state);
    state = o.state;
  } else if (store instanceof RedisBackend) {
    state = new RedisChainState(store, { keys, stateTtlMs, finishedRunTtlMs, onRunFinished });
  } else if (store instanceof DurableBackend) {
    state = new DurableChainState(store, { keys, stateTtlMs, finishedRunTtlMs, onRunFinished });
  } else if (store instanceof LocalBackend) {
    state = new LocalChainState(store, { keys, stateTtlMs, finishedRunTtlMs, onRunFinished });
  } else {
    throw new ConfigError(
      `${W}: a custom store needs an explicit \`state\` (a ChainStateStore over it)`,
      { context: { field: 'state' } },
    );
  }

  // queues: they follow the store (what the store keeps across a crash, the queues keep too)
  const allowVolatileQueues = optionalBoolean(
    W,
    'allowVolatileQueues',
    o.allowVolatileQueues,
    false,
  );
  const durableStore = (store as { durable?: unknown }).durable === true;
  const queueCapacity = capacity(o.queueCapacity);
  let queues: ChainQueues;
  if (o.queues !== undefined) {
    const q = readOptions(W, o.queues, ['task', 'parser', 'error'], 'queues');
    for (const name of ['task', 'parser', 'error'] as const) {
      const queue = q[name];
      if (!queue || typeof queue.receive !== 'function' || typeof queue.push !== 'function')
        invalid(W, `queues.${name}`, 'a ChainQueue', queue);
    }
    // queues shared between processes need shared state: a single-node store keeps its state
    // in this process, so several processes on the same streams would each advance the same
    // nodes on private state (no exactly-once advance)
    if (runtimeMode === 'single_node') {
      for (const name of ['task', 'parser', 'error'] as const) {
        if (q[name] instanceof RedisStreamQueue) {
          throw new ConfigError(
            `${W}: \`queues.${name}\` is a Redis Stream queue, shared between processes, but the store is single-node (state in this process): use a RedisBackend as \`store\`, or in-process queues`,
            { context: { field: `queues.${name}` } },
          );
        }
      }
    }
    queues = o.queues;
  } else if (store instanceof DurableBackend) {
    // in flight when a process dies, a message comes back once its node's lease has ended: the
    // claim comes after the receive, so the queue's lease outlasts the node's by a margin (a
    // copy arriving while the node is still leased would meet LOCKED_BY_OTHER and be dropped)
    queues = durableChainQueues(store, {
      capacity: queueCapacity,
      metrics,
      keyPrefix: keys.prefix,
      visibilityMs: leaseMs + Math.max(1_000, Math.ceil(leaseMs / 4)),
    });
  } else if (store instanceof RedisBackend) {
    queues = createRedisStreamQueues({
      client: store.client,
      keys,
      // the store's keyPrefix is already a namespace: named by the prefix it came from, it is
      // not escaped twice (`shop:eu:` stays `shop%3Aeu:`, beside the state)
      keyPrefix: namespaceKeyPrefix(store.keyPrefix),
      consumer: workerId,
      // a delivery is taken over from a dead worker only once its node's lease has run out
      claimIdleMs: Math.max(DEFAULT_CLAIM_IDLE_MS, Math.ceil(leaseMs * 1.5)),
      metrics,
      ...(o.queueCapacity !== undefined ? { capacity: queueCapacity } : {}),
    });
  } else if (durableStore && !allowVolatileQueues) {
    // a durable store of another kind: its queues must be given
    throw new ConfigError(
      `${W}: a durable store needs durable queues: pass \`queues\` (queues kept in the same ` +
        'durable store), or set `allowVolatileQueues: true` to accept that queued messages die ' +
        'with the process',
      { context: { field: 'queues' } },
    );
  } else {
    queues = memoryQueues(queueCapacity, metrics);
  }
  const ownsQueues = o.queues === undefined;
  const volatileQueues = Object.values(queues).some((q) => q instanceof MemoryQueue);
  const outlivesProcess = runtimeMode === 'distributed' || durableStore;
  if (volatileQueues && outlivesProcess && !allowVolatileQueues) {
    const kind = durableStore ? 'durable' : 'Redis';
    throw new ConfigError(
      `${W}: in-memory queues over a ${kind} store lose their messages when the process dies ` +
        '(the state survives, the queued work does not): pass durable queues in `queues` ' +
        '(e.g. createRedisStreamQueues), leave `queues` out to get queues that follow the ' +
        'store, or set `allowVolatileQueues: true` to accept the loss',
      { context: { field: 'queues' } },
    );
  }

  // rate limits: one key per module; each module's own rateLimit is an override
  const overrides: Record<string, { rate: number; intervalMs?: number; burst?: number }> = {};
  for (const m of modules.values()) if (m.rateLimit) overrides[m.id] = { ...m.rateLimit };
  let limiter: RateLimiter;
  if (o.rateLimit instanceof RateLimiter) {
    limiter = o.rateLimit;
  } else {
    const base = readOptions<RateLimiterOptions>(
      W,
      o.rateLimit,
      ['global', 'perKey', 'overrides', 'jitterMs', 'store', 'name', 'clock', 'random', 'metrics'],
      'rateLimit',
    );
    limiter = new RateLimiter({
      ...base,
      overrides: { ...(base.overrides ?? {}), ...overrides },
      metrics: base.metrics ?? (metrics === noopMetrics ? undefined : metrics),
    });
  }
  const limits = describeLimits(o.rateLimit, modules, overrides);
  const downloadRetry =
    o.downloadRetry instanceof RetryPolicy
      ? o.downloadRetry
      : new RetryPolicy({
          maxRetries: 3,
          initialDelayMs: 100,
          maxDelayMs: 5000,
          ...(o.downloadRetry as RetryPolicyOptions | undefined),
        });
  const nr = readRetryOptions(o.nodeRetry, 'nodeRetry');
  const maxNodeRetries = optionalNumber(W, 'nodeRetry.maxRetries', nr.maxRetries, 3, int(0));
  const nodeRetry = new RetryPolicy({
    maxRetries: maxNodeRetries,
    initialDelayMs: nr.initialDelayMs ?? 200,
    maxDelayMs: nr.maxDelayMs ?? 10_000,
    multiplier: nr.multiplier ?? 2,
    jitter: nr.jitter ?? 0.2,
  });

  const ir = readRetryOptions(o.itemRetry, 'itemRetry');
  const maxItemRetries = optionalNumber(W, 'itemRetry.maxRetries', ir.maxRetries, 5, int(0));
  const itemRetry = new RetryPolicy({
    maxRetries: maxItemRetries,
    initialDelayMs: optionalNumber(W, 'itemRetry.initialDelayMs', ir.initialDelayMs, 100, int(0)),
    maxDelayMs: optionalNumber(W, 'itemRetry.maxDelayMs', ir.maxDelayMs, 5_000, int(0)),
    multiplier: ir.multiplier ?? 2,
    jitter: ir.jitter ?? 0.2,
  });

  return Object.freeze({
    modules,
    downloader,
    loadLoginInfo,
    onItem,
    logger,
    logs: levelCheck(o.logger),
    metrics,
    keys,
    stateTtlMs,
    finishedRunTtlMs,
    leaseMs,
    downloadTimeoutMs,
    fallback,
    moduleErrorThreshold,
    taskErrorThreshold,
    retryPollMs,
    relayLeaseMs,
    sweepIntervalMs,
    sweepWindowMs,
    stopTimeoutMs,
    workerId,
    concurrency,
    store,
    ownsStore,
    runtimeMode,
    state,
    queues,
    ownsQueues,
    sharedQueues: runtimeMode === 'distributed' && !volatileQueues,
    durable: store instanceof DurableBackend,
    volatileQueues,
    recordHandOffs: volatileQueues && outlivesProcess,
    limiter,
    limits,
    downloadRetry,
    maxNodeRetries,
    nodeRetry,
    maxItemRetries,
    itemRetry,
  });
}

function readModules(list: unknown): ReadonlyMap<string, ModuleDefinition> {
  if (!Array.isArray(list) || list.length === 0)
    invalid(W, 'modules', 'a non-empty array of module definitions', list);
  const modules = new Map<string, ModuleDefinition>();
  for (const [i, m] of list.entries()) {
    let def: ModuleDefinition;
    try {
      def = defineModule(m as ModuleDefinition);
    } catch (error) {
      if (error instanceof ConfigError) {
        throw new ConfigError(`${W}: modules[${i}]: ${error.message}`, {
          cause: error,
          context: { field: `modules[${i}]` },
        });
      }
      throw error;
    }
    if (modules.has(def.id)) {
      throw new ConfigError(`${W}: module id ${JSON.stringify(def.id)} is registered twice`, {
        context: { field: `modules[${i}].id` },
      });
    }
    modules.set(def.id, def);
  }
  return modules;
}

/** The capacity of the default queues, when given (checked). */
function capacity(value: unknown): number {
  return optionalNumber(W, 'queueCapacity', value, 1000, { integer: true, min: 1 });
}

/** Bounded in-memory queues, for the in-process store (or a volatile mix the user accepted). */
function memoryQueues(cap: number, metrics: Metrics): ChainQueues {
  return {
    task: new MemoryQueue<string>({ name: 'task', capacity: cap, metrics }),
    parser: new MemoryQueue<string>({ name: 'parser', capacity: cap, metrics }),
    error: new MemoryQueue<string>({ name: 'error', capacity: cap, metrics }),
  };
}

const warned = new Set<string>();

/** Logs a deprecation once per process (per option). */
function warnOnce(logger: Logger, option: string, message: string): void {
  if (warned.has(option)) return;
  warned.add(option);
  writeLog(logger, 'warn', message, { option, decision: 'deprecated' });
}

/** The retry-policy fields of `nodeRetry` / `itemRetry` (unknown fields are refused). */
function readRetryOptions<T extends NodeRetryOptions | ItemRetryOptions>(
  value: T | undefined,
  field: string,
): Partial<T> {
  return readOptions(
    W,
    value,
    ['maxRetries', 'initialDelayMs', 'maxDelayMs', 'multiplier', 'jitter'],
    field,
  );
}
