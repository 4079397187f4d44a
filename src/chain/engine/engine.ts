/**
 * The chain engine: one ingress (NormalizeInput → LoadTask → ThresholdPreCheck → BuildModules →
 * ModuleDispatch) for the three messages, consumer loops on the three queues, the outbox relay,
 * the delayed-retry pump, and the error-task consumer. Concurrency comes from mocra schedulers,
 * download limits from the RateLimiter, transient download retries from RetryPolicy, task and
 * login lookups from PluginCache, state from the chain state machine on a CacheService.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { PluginCache } from '../../cache/index.js';
import { ConfigError, isMocraError } from '../../errors.js';
import { sleep } from '../../internal/abort.js';
import { Emitter } from '../../internal/emitter.js';
import { unrefTimeout } from '../../internal/clock.js';
import {
  invalid,
  optionalBoolean,
  optionalFunction,
  optionalNumber,
  optionalString,
  readOptions,
} from '../../internal/validate.js';
import { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import { silentLogger, type LogFields, type Logger } from '../../observe/logger.js';
import { noopMetrics, type Metrics } from '../../observe/metrics.js';
import { RateLimiter, type RateLimiterOptions } from '../../rate-limit/index.js';
import { RetryPolicy, type RetryPolicyOptions } from '../../retry/index.js';
import { createScheduler, type TaskScheduler } from '../../scheduler/index.js';
import { LocalBackend, RedisBackend, type CacheService } from '../../store/index.js';
import {
  encodeMessage,
  normalizeMessage,
  type ChainInput,
  type ErrorTaskModel,
  type JsonObject,
  type ParserTaskModel,
  type TaskModel,
} from '../messages.js';
import { defineModule, type ModuleDefinition, type TaskInfo } from '../module.js';
import { MemoryQueue, type ChainQueue, type Delivery } from '../queue.js';
import {
  LocalChainState,
  RedisChainState,
  RetryScheduleCode,
  TerminatedCode,
  ThresholdCode,
  type ChainStateStore,
} from '../state/index.js';
import { DownloadPath, fetchDownloader } from './download.js';
import {
  ModuleProcessorWithChain,
  OUTBOX_ETM,
  OUTBOX_ITEM,
  OUTBOX_PTM,
  OUTBOX_RETRY,
  eventBase,
  toAddress,
  type NodeOutcome,
  type ProcessorRuntime,
} from './processor.js';
import type {
  ChainDeadLetter,
  ChainEngineOptions,
  ChainEngineStats,
  ChainEventMap,
  ChainEventName,
  ChainItem,
  ChainQueues,
  Downloader,
} from './types.js';

const W = 'createChainEngine';
const DAY = 86_400_000;
const OPTION_KEYS = [
  'modules',
  'downloader',
  'store',
  'state',
  'queues',
  'queueCapacity',
  'concurrency',
  'rateLimit',
  'downloadRetry',
  'nodeRetry',
  'moduleErrorThreshold',
  'taskErrorThreshold',
  'leaseMs',
  'downloadTimeoutMs',
  'fallback',
  'loadLoginInfo',
  'onItem',
  'keys',
  'stateTtlMs',
  'logger',
  'metrics',
  'workerId',
  'retryPollMs',
  'stopTimeoutMs',
  'relayLeaseMs',
  'sweepIntervalMs',
  'sweepWindowMs',
] as const;

interface TaskRecord {
  taskId: string;
  runId: string;
  account: string;
  platform: string;
  modules: string[];
  metadata?: JsonObject;
}

type Disposition =
  | { ack: true }
  | { release: true; delayMs: number; leaveOnStop?: boolean }
  | { deadLetter: string }
  | { leave: true };
const ACK: Disposition = { ack: true };
/** Not settled: a shared queue hands it to another worker once its claim has idled out. */
const LEAVE: Disposition = { leave: true };

class TaskNotFound extends Error {}

/** The running engine. Create it with {@link createChainEngine}. */
export interface ChainEngine {
  /** `'distributed'` on a Redis store, else `'single_node'`. */
  readonly runtimeMode: 'single_node' | 'distributed';
  /** Starts the consumers. Idempotent. */
  start(): Promise<void>;
  /**
   * Submits a task: each of its modules runs from its first step.
   * @throws {@link MessageInvalidError} when the task is malformed (naming the field).
   * @throws {@link SchedulerClosedError}-like {@link ConfigError} after `stop()`.
   */
  submit(task: TaskModel): Promise<void>;
  /**
   * Puts a raw message (any of the three kinds, as an object or JSON text) through the ingress.
   * A malformed message is dead-lettered with its reason, never thrown.
   */
  publish(message: unknown): Promise<void>;
  /**
   * Resolves when nothing is queued, running, waiting to be relayed or waiting for a retry **in
   * this process**. With shared queues (several workers on Redis Streams) it says nothing about
   * the other workers, nor about messages still in a stream that this process has not read: it
   * means "this worker has nothing in hand", not "the run is finished". Wait for your own end
   * condition there (e.g. every expected item produced).
   */
  onIdle(): Promise<void>;
  /**
   * Stops gracefully: stops reading, lets in-flight messages finish (up to `stopTimeoutMs`;
   * the rest are aborted and released back to their queue), waits until what they committed is
   * published (outbox relay) and any due retry in hand is queued, then closes what the engine
   * created. Queues and a store passed in are left open: close them after this resolves.
   *
   * With shared queues (passed in, on a Redis store) a message aborted here is left
   * unacknowledged rather than released (its node's lease is still held; the queue hands it to
   * another worker after its claim time, which must exceed `leaseMs`). Node retries not yet due
   * stay in Redis: any worker's sweep promotes them when they fall due. Each wait is bounded by
   * `stopTimeoutMs`.
   */
  stop(): Promise<void>;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends ChainEventName>(event: K, listener: (event: ChainEventMap[K]) => void): () => void;
  /** Counters since creation. */
  stats(): ChainEngineStats;
  /**
   * Messages set aside by this process, with their reasons (most recent 1000). Queues that keep
   * dead letters durably (Redis Streams) also get them: read those with the queue's own API.
   */
  deadLetters(): readonly ChainDeadLetter[];
}

/**
 * Creates a chain engine over the given modules.
 *
 * @throws {@link ConfigError} naming the first invalid option.
 * @example
 * ```ts
 * const engine = createChainEngine({ modules: [shop], onItem: (i) => save(i.item) });
 * await engine.start();
 * await engine.submit({ taskId: 't1', account: 'acme', platform: 'web', modules: ['shop'] });
 * await engine.onIdle();
 * await engine.stop();
 * ```
 */
export function createChainEngine(options: ChainEngineOptions): ChainEngine {
  return new ChainEngineImpl(options);
}

class ChainEngineImpl implements ChainEngine {
  readonly runtimeMode: 'single_node' | 'distributed';
  readonly #store: CacheService;
  readonly #ownsStore: boolean;
  readonly #state: ChainStateStore;
  readonly #keys: ChainKeyBuilder;
  readonly #queues: ChainQueues;
  readonly #ownsQueues: boolean;
  /** Queues shared with other processes (passed in, distributed mode). */
  readonly #sharedQueues: boolean;
  readonly #processors = new Map<string, ModuleProcessorWithChain>();
  readonly #modules = new Map<string, ModuleDefinition>();
  readonly #schedulers: { task: TaskScheduler; parser: TaskScheduler; error: TaskScheduler };
  readonly #concurrency: { task: number; parser: number; error: number };
  readonly #downloads: DownloadPath;
  readonly #limiter: RateLimiter;
  readonly #nodeRetry: RetryPolicy;
  readonly #maxNodeRetries: number;
  readonly #moduleThreshold: number;
  readonly #taskThreshold: number;
  readonly #leaseMs: number;
  readonly #ttl: number;
  readonly #fallback: boolean;
  readonly #retryPollMs: number;
  readonly #stopTimeoutMs: number;
  readonly #relayLeaseMs: number;
  readonly #sweepIntervalMs: number;
  readonly #sweepWindowMs: number;
  readonly #touched = new Map<string, number>();
  #sweepTimer: ReturnType<typeof setTimeout> | undefined;
  #sweepRunning = false;
  readonly #workerId: string;
  readonly #loadLoginInfo: ChainEngineOptions['loadLoginInfo'];
  readonly #onItem: ChainEngineOptions['onItem'];
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #emitter: Emitter<ChainEventMap>;
  readonly #taskCache = new PluginCache<TaskRecord>({
    ttlMs: 60_000,
    ttiMs: 30_000,
    maxEntries: 10_000,
  });
  readonly #loginCache = new PluginCache<{ value: JsonObject | undefined }>({
    ttlMs: 300_000,
    ttiMs: 120_000,
    maxEntries: 10_000,
  });
  readonly #loginInfo = new Map<string, JsonObject>();
  readonly #readAbort = new AbortController();
  readonly #workAbort = new AbortController();
  readonly #relayDirty = new Set<string>();
  #relayRunning = false;
  /** Retries this process scheduled and has not seen published: task → (node@attempt → due, performance.now() ms). */
  readonly #pendingRetries = new Map<string, Map<string, number>>();
  #pumpTimer: ReturnType<typeof setTimeout> | undefined;
  #pumpRunning = false;
  #handlers = 0;
  #started = false;
  #stopped = false;
  #loops: Promise<void>[] = [];
  readonly #deadLetters: ChainDeadLetter[] = [];
  readonly #stats: ChainEngineStats;

  constructor(options: ChainEngineOptions) {
    const o = readOptions(W, options, OPTION_KEYS);
    if (options === undefined) invalid(W, 'options', 'an object with `modules`', options);
    if (!Array.isArray(o.modules) || o.modules.length === 0)
      invalid(W, 'modules', 'a non-empty array of module definitions', o.modules);
    for (const [i, m] of o.modules.entries()) {
      let def: ModuleDefinition;
      try {
        def = defineModule(m);
      } catch (error) {
        if (error instanceof ConfigError) {
          throw new ConfigError(`${W}: modules[${i}]: ${error.message}`, {
            cause: error,
            context: { field: `modules[${i}]` },
          });
        }
        throw error;
      }
      if (this.#modules.has(def.id)) {
        throw new ConfigError(`${W}: module id ${JSON.stringify(def.id)} is registered twice`, {
          context: { field: `modules[${i}].id` },
        });
      }
      this.#modules.set(def.id, def);
    }
    const downloader =
      optionalFunction<Downloader>(W, 'downloader', o.downloader) ?? fetchDownloader;
    this.#loadLoginInfo = optionalFunction(W, 'loadLoginInfo', o.loadLoginInfo);
    this.#onItem = optionalFunction(W, 'onItem', o.onItem);
    this.#logger = (o.logger as Logger | undefined) ?? silentLogger;
    if (typeof this.#logger.info !== 'function')
      invalid(W, 'logger', 'a logger with debug/info/warn/error', o.logger);
    this.#metrics = (o.metrics as Metrics | undefined) ?? noopMetrics;
    if (typeof this.#metrics.increment !== 'function')
      invalid(W, 'metrics', 'a Metrics (increment/observe/gauge)', o.metrics);
    this.#keys = o.keys ?? new ChainKeyBuilder();
    if (!(this.#keys instanceof ChainKeyBuilder)) invalid(W, 'keys', 'a ChainKeyBuilder', o.keys);
    this.#ttl = optionalNumber(W, 'stateTtlMs', o.stateTtlMs, 7 * DAY, {
      integer: true,
      min: 1000,
    });
    this.#leaseMs = optionalNumber(W, 'leaseMs', o.leaseMs, 60_000, { integer: true, min: 10 });
    const downloadTimeoutMs = optionalNumber(W, 'downloadTimeoutMs', o.downloadTimeoutMs, 30_000, {
      integer: true,
      min: 1,
    });
    this.#fallback = optionalBoolean(W, 'fallback', o.fallback, true);
    this.#moduleThreshold = optionalNumber(W, 'moduleErrorThreshold', o.moduleErrorThreshold, 10, {
      integer: true,
      min: 1,
    });
    this.#taskThreshold = optionalNumber(W, 'taskErrorThreshold', o.taskErrorThreshold, 25, {
      integer: true,
      min: 1,
    });
    this.#retryPollMs = optionalNumber(W, 'retryPollMs', o.retryPollMs, 50, {
      integer: true,
      min: 1,
    });
    this.#relayLeaseMs = optionalNumber(W, 'relayLeaseMs', o.relayLeaseMs, 30_000, {
      integer: true,
      min: 10,
    });
    this.#sweepIntervalMs = optionalNumber(W, 'sweepIntervalMs', o.sweepIntervalMs, 2_000, {
      integer: true,
      min: 10,
    });
    this.#sweepWindowMs = optionalNumber(W, 'sweepWindowMs', o.sweepWindowMs, 3_600_000, {
      integer: true,
      min: 1000,
    });
    this.#stopTimeoutMs = optionalNumber(W, 'stopTimeoutMs', o.stopTimeoutMs, 10_000, {
      integer: true,
      min: 0,
    });
    this.#workerId =
      optionalString(W, 'workerId', o.workerId, undefined) ??
      `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

    const c = readOptions(
      W,
      o.concurrency,
      ['task', 'publish', 'parser', 'errorTask'],
      'concurrency',
    );
    const rule = { integer: true, min: 1 };
    this.#concurrency = {
      task: optionalNumber(W, 'concurrency.task', c.task, 4, rule),
      parser: optionalNumber(W, 'concurrency.parser', c.parser, 8, rule),
      error: optionalNumber(W, 'concurrency.errorTask', c.errorTask, 2, rule),
    };
    const publish = optionalNumber(W, 'concurrency.publish', c.publish, 16, rule);
    this.#schedulers = {
      task: createScheduler({ maxConcurrent: this.#concurrency.task, queueCapacity: Infinity }),
      parser: createScheduler({ maxConcurrent: this.#concurrency.parser, queueCapacity: Infinity }),
      error: createScheduler({ maxConcurrent: this.#concurrency.error, queueCapacity: Infinity }),
    };

    // store, runtime mode, state machine
    if (
      o.store !== undefined &&
      (typeof o.store !== 'object' || o.store === null || !('mode' in o.store))
    )
      invalid(W, 'store', 'a CacheService', o.store);
    this.#ownsStore = o.store === undefined;
    this.#store = o.store ?? new LocalBackend();
    this.runtimeMode = this.#store.mode === 'distributed' ? 'distributed' : 'single_node';
    if (o.state !== undefined) {
      if (typeof o.state !== 'object' || o.state === null || typeof o.state.claim !== 'function')
        invalid(W, 'state', 'a ChainStateStore', o.state);
      this.#state = o.state;
    } else if (this.#store instanceof RedisBackend) {
      this.#state = new RedisChainState(this.#store, { keys: this.#keys, stateTtlMs: this.#ttl });
    } else if (this.#store instanceof LocalBackend) {
      this.#state = new LocalChainState(this.#store, { keys: this.#keys, stateTtlMs: this.#ttl });
    } else {
      throw new ConfigError(
        `${W}: a custom store needs an explicit \`state\` (a ChainStateStore over it)`,
        { context: { field: 'state' } },
      );
    }

    // queues
    const capacity = optionalNumber(W, 'queueCapacity', o.queueCapacity, 1000, {
      integer: true,
      min: 1,
    });
    if (o.queues !== undefined) {
      const q = readOptions(W, o.queues, ['task', 'parser', 'error'], 'queues');
      for (const name of ['task', 'parser', 'error'] as const) {
        const queue = q[name];
        if (!queue || typeof queue.receive !== 'function' || typeof queue.push !== 'function')
          invalid(W, `queues.${name}`, 'a ChainQueue', queue);
      }
      this.#queues = o.queues;
      this.#ownsQueues = false;
    } else {
      this.#queues = {
        task: new MemoryQueue<string>({ name: 'task', capacity, metrics: this.#metrics }),
        parser: new MemoryQueue<string>({ name: 'parser', capacity, metrics: this.#metrics }),
        error: new MemoryQueue<string>({ name: 'error', capacity, metrics: this.#metrics }),
      };
      this.#ownsQueues = true;
    }
    this.#sharedQueues = !this.#ownsQueues && this.runtimeMode === 'distributed';

    // rate limits: one key per module; each module's own rateLimit is an override
    const overrides: Record<string, { rate: number; intervalMs?: number; burst?: number }> = {};
    for (const m of this.#modules.values()) if (m.rateLimit) overrides[m.id] = { ...m.rateLimit };
    if (o.rateLimit instanceof RateLimiter) {
      this.#limiter = o.rateLimit;
    } else {
      const base = readOptions<RateLimiterOptions>(
        W,
        o.rateLimit,
        ['global', 'perKey', 'overrides', 'jitterMs', 'store', 'name', 'clock', 'random'],
        'rateLimit',
      );
      this.#limiter = new RateLimiter({
        ...base,
        overrides: { ...(base.overrides ?? {}), ...overrides },
      });
    }
    const downloadRetry =
      o.downloadRetry instanceof RetryPolicy
        ? o.downloadRetry
        : new RetryPolicy({
            maxRetries: 3,
            initialDelayMs: 100,
            maxDelayMs: 5000,
            ...(o.downloadRetry as RetryPolicyOptions | undefined),
          });
    const nr = readOptions(
      W,
      o.nodeRetry,
      ['maxRetries', 'initialDelayMs', 'maxDelayMs', 'multiplier', 'jitter'],
      'nodeRetry',
    );
    this.#maxNodeRetries = optionalNumber(W, 'nodeRetry.maxRetries', nr.maxRetries, 3, {
      integer: true,
      min: 0,
    });
    this.#nodeRetry = new RetryPolicy({
      maxRetries: this.#maxNodeRetries,
      initialDelayMs: nr.initialDelayMs ?? 200,
      maxDelayMs: nr.maxDelayMs ?? 10_000,
      multiplier: nr.multiplier ?? 2,
      jitter: nr.jitter ?? 0.2,
    });

    this.#stats = {
      runtimeMode: this.runtimeMode,
      tasksSubmitted: 0,
      claims: {},
      commits: {},
      nodeFailures: 0,
      nodesGivenUp: 0,
      retriesScheduled: 0,
      downloads: 0,
      downloadRetries: 0,
      items: 0,
      fallbacks: 0,
      fallbacksRefused: 0,
      modulesTerminated: 0,
      tasksTerminated: 0,
      deadLettered: 0,
      zombiesRecovered: 0,
      cacheHits: 0,
      cacheMisses: 0,
      received: { task: 0, parser: 0, error: 0 },
      skipped: {},
    };
    downloadRetry.on('retry', () => {
      this.#stats.downloadRetries++;
      this.#metrics.increment('download_retry_total');
    });
    this.#downloads = new DownloadPath({
      downloader,
      limiter: this.#limiter,
      retry: downloadRetry,
      publishConcurrency: publish,
      timeoutMs: downloadTimeoutMs,
      onTry: (moduleId) => {
        this.#stats.downloads++;
        this.#metrics.increment('download_total', { module: moduleId });
      },
    });
    this.#emitter = new Emitter<ChainEventMap>((error) =>
      this.#log('error', 'an event listener threw', { error: String(error) }),
    );
    const runtime: ProcessorRuntime = {
      state: this.#state,
      store: this.#store,
      keys: this.#keys,
      downloads: this.#downloads,
      leaseMs: this.#leaseMs,
      stateTtlMs: this.#ttl,
      fallback: this.#fallback,
      signal: this.#workAbort.signal,
      emit: (name, event) => this.#emit(name, event),
      count: (name, labels) => this.#count(name, labels),
      log: (level, message, fields) => this.#log(level, message, fields),
      relay: (taskId) => {
        this.#touch(taskId);
        this.#relay(taskId);
      },
    };
    for (const m of this.#modules.values())
      this.#processors.set(m.id, new ModuleProcessorWithChain(m, runtime));
  }

  async start(): Promise<void> {
    if (this.#stopped)
      throw new ConfigError(`${W}: start() after stop()`, { context: { field: 'start' } });
    if (this.#started) return;
    this.#started = true;
    this.#log('info', 'chain engine started', {
      worker_id: this.#workerId,
      modules: [...this.#modules.keys()].join(','),
    });
    this.#loops = (['task', 'parser', 'error'] as const).map((role) =>
      this.#consume(role, this.#queues[role], this.#schedulers[role], this.#concurrency[role]),
    );
    this.#scheduleSweep();
  }

  async submit(task: TaskModel): Promise<void> {
    if (this.#stopped)
      throw new ConfigError(`${W}: submit() after stop()`, { context: { field: 'submit' } });
    const input = normalizeMessage({ kind: 'task', body: task });
    if (input.kind !== 'task') throw new Error('unreachable');
    const { loginInfo, ...body } = input.task;
    if (loginInfo !== undefined) this.#loginInfo.set(body.taskId, loginInfo);
    this.#stats.tasksSubmitted++;
    // login info never travels on a queue
    await this.#queues.task.push(encodeMessage({ kind: 'task', body }));
  }

  async publish(message: unknown): Promise<void> {
    if (this.#stopped)
      throw new ConfigError(`${W}: publish() after stop()`, { context: { field: 'publish' } });
    let text: string;
    try {
      text = typeof message === 'string' ? message : JSON.stringify(message);
      if (typeof text !== 'string') text = String(message);
    } catch {
      text = String(message);
    }
    let kind: unknown;
    try {
      kind = (JSON.parse(text) as { kind?: unknown } | null)?.kind;
    } catch {
      kind = undefined;
    }
    const queue =
      kind === 'parser_task'
        ? this.#queues.parser
        : kind === 'error_task'
          ? this.#queues.error
          : this.#queues.task;
    await queue.push(text);
  }

  on<K extends ChainEventName>(event: K, listener: (event: ChainEventMap[K]) => void): () => void {
    return this.#emitter.on(event, listener);
  }

  stats(): ChainEngineStats {
    const stats = structuredClone(this.#stats);
    const task = this.#taskCache.stats();
    const login = this.#loginCache.stats();
    stats.cacheHits = task.hits + login.hits;
    stats.cacheMisses = task.misses + login.misses;
    return stats;
  }

  deadLetters(): readonly ChainDeadLetter[] {
    return this.#deadLetters.slice();
  }

  onIdle(): Promise<void> {
    // two quiet looks in a row: a hand-off between stages is never mistaken for idleness; a
    // ref'd timer: a script that awaits onIdle() stays alive until the work is done
    let quiet = 0;
    return this.#until(() => (quiet = this.#isIdle() ? quiet + 1 : 0) >= 2, { keepAlive: true });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#readAbort.abort();
    clearTimeout(this.#pumpTimer);
    clearTimeout(this.#sweepTimer);
    const drained = Promise.all(this.#loops).then(() => this.#waitHandlers());
    const timedOut = await Promise.race([
      drained.then(() => false),
      sleep(this.#stopTimeoutMs).then(() => true),
    ]);
    if (timedOut) {
      this.#log('warn', 'stop: aborting in-flight nodes (their leases will expire)', {
        in_flight: this.#handlers,
      });
    }
    this.#workAbort.abort();
    await drained;
    // what the last commits wrote is published before the queues and the store may be closed
    const published = this.#until(
      () => !this.#relayRunning && this.#relayDirty.size === 0 && !this.#pumpRunning,
    );
    const stuck = await Promise.race([
      published.then(() => false),
      sleep(this.#stopTimeoutMs).then(() => true),
    ]);
    if (stuck) {
      this.#log('warn', 'stop: the outbox relay is still publishing (a full queue?)', {
        worker_id: this.#workerId,
      });
    }
    await this.#downloads.close();
    await Promise.all([
      this.#schedulers.task.shutdown({ mode: 'cancel' }),
      this.#schedulers.parser.shutdown({ mode: 'cancel' }),
      this.#schedulers.error.shutdown({ mode: 'cancel' }),
    ]);
    if (this.#ownsQueues) {
      this.#queues.task.close();
      this.#queues.parser.close();
      this.#queues.error.close();
    }
    if (this.#ownsStore) await this.#store.close();
    this.#log('info', 'chain engine stopped', { worker_id: this.#workerId });
  }

  // ── consumers ──────────────────────────────────────────────────────────────

  async #consume(
    role: 'task' | 'parser' | 'error',
    queue: ChainQueue<string>,
    scheduler: TaskScheduler,
    concurrency: number,
  ): Promise<void> {
    let active = 0;
    let freed: (() => void) | undefined;
    const signal = this.#readAbort.signal;
    while (!signal.aborted) {
      if (active >= concurrency) {
        await new Promise<void>((resolve) => (freed = resolve));
        continue;
      }
      let delivery: Delivery<string> | null;
      try {
        delivery = await queue.receive({ signal });
      } catch (error) {
        if (signal.aborted) break;
        this.#log('error', `receive from ${queue.name} failed; retrying`, { error: String(error) });
        await sleep(200, signal).catch(() => {});
        continue;
      }
      if (delivery === null) break;
      const d = delivery;
      this.#stats.received[role]++;
      active++;
      this.#handlers++;
      scheduler
        .run(() => this.#handle(queue, d))
        .catch((error: unknown) =>
          this.#log('error', 'handler failed unexpectedly', {
            queue: queue.name,
            error: String(error),
          }),
        )
        .finally(() => {
          active--;
          this.#handlers--;
          const f = freed;
          freed = undefined;
          f?.();
        });
    }
    freed = undefined;
  }

  #waitHandlers(): Promise<void> {
    return this.#until(() => this.#handlers === 0);
  }

  /** Resolves once `condition()` holds (checked every 5 ms; `keepAlive` refs the timer). */
  #until(condition: () => boolean, { keepAlive = false } = {}): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (condition()) resolve();
        else if (keepAlive) setTimeout(check, 5);
        else unrefTimeout(check, 5);
      };
      check();
    });
  }

  async #handle(queue: ChainQueue<string>, delivery: Delivery<string>): Promise<void> {
    let disposition: Disposition;
    let input: ChainInput | undefined;
    const hold = { claimed: false };
    try {
      input = normalizeMessage(delivery.message); // NormalizeInput
    } catch (error) {
      disposition = { deadLetter: `NormalizeInput: ${(error as Error).message}` };
    }
    if (input !== undefined) {
      try {
        disposition = await this.#ingress(input, delivery, hold);
      } catch (error) {
        if (this.#workAbort.signal.aborted) {
          disposition = this.#stopping();
        } else if (isMocraError(error) && error.retryable) {
          // e.g. Redis unavailable: nothing was committed; try the message again later
          this.#log('warn', 'message will be retried: a retryable error interrupted it', {
            queue: queue.name,
            error: error.message,
            code: error.code,
          });
          const delayMs = Math.min(5000, 100 * 2 ** Math.min(delivery.deliveries, 6));
          // A shared queue re-adds a released message under a new id, so its next claim comes
          // from another owner. If this delivery holds the node's lease, that claim would meet
          // LOCKED_BY_OTHER and the copy would be dropped, leaving the node processing with no
          // message: keep it until the lease has run out (or leave it pending when stopping).
          disposition =
            hold.claimed && this.#sharedQueues
              ? { release: true, delayMs: Math.max(delayMs, this.#leaseMs), leaveOnStop: true }
              : { release: true, delayMs };
        } else {
          disposition = {
            deadLetter: `${(error as Error)?.name ?? 'Error'}: ${(error as Error)?.message ?? String(error)}`,
          };
        }
      }
    }
    disposition ??= ACK;
    try {
      if ('deadLetter' in disposition) {
        this.#deadLetter(queue.name, delivery.message, disposition.deadLetter);
        // durably where the queue can (a dead-letter stream), else only in memory
        if (typeof delivery.deadLetter === 'function')
          await delivery.deadLetter(disposition.deadLetter);
        else await delivery.ack();
      } else if ('leave' in disposition) {
        this.#log('info', 'stopping: delivery left unacknowledged for another worker', {
          queue: queue.name,
          decision: 'left_pending',
        });
      } else if ('release' in disposition) {
        if (disposition.delayMs > 0 && !this.#readAbort.signal.aborted)
          await sleep(disposition.delayMs, this.#readAbort.signal).catch(() => {});
        if (disposition.leaveOnStop && this.#readAbort.signal.aborted) {
          this.#log('info', 'stopping: delivery holding a lease left unacknowledged', {
            queue: queue.name,
            decision: 'left_pending',
          });
        } else {
          await delivery.release();
        }
      } else {
        await delivery.ack();
      }
    } catch (error) {
      this.#log('error', 'could not settle a delivery', {
        queue: queue.name,
        error: String(error),
      });
    }
  }

  // ── the ingress ────────────────────────────────────────────────────────────

  async #ingress(
    input: ChainInput,
    delivery: Delivery<string>,
    hold: { claimed: boolean },
  ): Promise<Disposition> {
    switch (input.kind) {
      case 'task':
        return this.#ingressTask(input.task, delivery.message);
      case 'parser_task':
        return this.#ingressNode(input.node, delivery, hold);
      case 'error_task':
        return this.#ingressError(input.node);
    }
  }

  async #ingressTask(task: TaskModel & { runId: string }, raw: string): Promise<Disposition> {
    // LoadTask: the task record every later message of the task is loaded from
    const record: TaskRecord = {
      taskId: task.taskId,
      runId: task.runId,
      account: task.account,
      platform: task.platform,
      modules: task.modules,
    };
    if (task.metadata !== undefined) record.metadata = task.metadata;
    await this.#store.set(this.#keys.taskRecord(task.taskId), JSON.stringify(record), {
      ttlMs: this.#ttl,
    });
    this.#taskCache.set('task', task.taskId, record);
    this.#touch(task.taskId);
    for (const moduleId of task.modules) {
      // BuildModules
      if (!this.#processors.has(moduleId)) {
        const reason = `BuildModules: module ${JSON.stringify(moduleId)} is not registered`;
        this.#deadLetter('task', raw, reason);
        await this.#persistDeadLetter(this.#queues.task, raw, reason);
        continue;
      }
      // ThresholdPreCheck
      const t = await this.#state.terminated(task.taskId, moduleId);
      if (t.code === TerminatedCode.TASK_TERMINATED) {
        this.#skip('task_terminated');
        return ACK;
      }
      if (t.code === TerminatedCode.MODULE_TERMINATED) {
        this.#skip('module_terminated');
        continue;
      }
      // ModuleDispatch: the module's first node
      const root: ParserTaskModel = {
        taskId: task.taskId,
        runId: task.runId,
        account: task.account,
        platform: task.platform,
        moduleId,
        stepIdx: 0,
        prefixRequest: '',
      };
      if (task.metadata !== undefined) root.metadata = task.metadata;
      await this.#queues.parser.push(encodeMessage({ kind: 'parser_task', body: root }), {
        signal: this.#workAbort.signal,
      });
      this.#emit('ParserTaskProduced', {
        type: 'ParserTaskProduced',
        ...eventBase(root),
        source: 'root',
      });
      this.#count('parser_task_produced_total', { source: 'root' });
    }
    return ACK;
  }

  async #ingressNode(
    ptm: ParserTaskModel,
    delivery: Delivery<string>,
    hold: { claimed: boolean },
  ): Promise<Disposition> {
    // LoadTask
    let record: TaskRecord;
    try {
      record = await this.#loadTask(ptm.taskId);
    } catch (error) {
      if (error instanceof TaskNotFound)
        return {
          deadLetter: `LoadTask: task ${JSON.stringify(ptm.taskId)} not found (never submitted to this store, or expired)`,
        };
      throw error;
    }
    // ThresholdPreCheck (the claim checks the marks again, atomically)
    const t = await this.#state.terminated(ptm.taskId, ptm.moduleId);
    if (t.code !== TerminatedCode.ACTIVE) {
      this.#skip(
        t.code === TerminatedCode.TASK_TERMINATED ? 'task_terminated' : 'module_terminated',
      );
      return ACK;
    }
    // BuildModules
    const processor = this.#processors.get(ptm.moduleId);
    if (!processor)
      return {
        deadLetter: `BuildModules: module ${JSON.stringify(ptm.moduleId)} is not registered`,
      };
    if (ptm.stepIdx >= processor.module.steps.length)
      return {
        deadLetter: `BuildModules: module ${JSON.stringify(ptm.moduleId)} has no step ${ptm.stepIdx}`,
      };
    const info = await this.#taskInfo(record, ptm);
    // ModuleDispatch
    const outcome = await processor.process(
      ptm,
      info,
      `${this.#workerId}/${delivery.id}`,
      delivery.message,
      hold,
    );
    return this.#afterNode(outcome);
  }

  /**
   * A message interrupted by stop(). In-memory queues get it back at once. A shared queue does
   * not: the node's lease is still held by this worker, so another worker would only meet
   * LOCKED_BY_OTHER now. Left unacknowledged, the queue hands it over once it has been idle for
   * the queue's claim time, which is set longer than the lease: the node is claimable by then.
   */
  #stopping(): Disposition {
    return this.#sharedQueues ? LEAVE : { release: true, delayMs: 0 };
  }

  #afterNode(outcome: NodeOutcome): Disposition {
    switch (outcome) {
      case 'released':
        return this.#stopping();
      case 'committed':
      case 'replayed':
        return ACK;
      case 'failed':
        this.#stats.nodeFailures++;
        return ACK;
      case 'commit_rejected':
        // the claim was lost (lease expired, recovered or taken over): deliver the message again
        // — a live owner's copy is then LOCKED_BY_OTHER or DUPLICATE_DONE, a recovered node runs
        this.#skip(outcome);
        return { release: true, delayMs: 0 };
      default:
        this.#skip(outcome);
        return ACK;
    }
  }

  async #ingressError(etm: ErrorTaskModel): Promise<Disposition> {
    // LoadTask
    try {
      await this.#loadTask(etm.taskId);
    } catch (error) {
      if (error instanceof TaskNotFound)
        return {
          deadLetter: `LoadTask: task ${JSON.stringify(etm.taskId)} not found (never submitted to this store, or expired)`,
        };
      throw error;
    }
    // BuildModules
    const module = this.#modules.get(etm.moduleId);
    if (!module)
      return {
        deadLetter: `BuildModules: module ${JSON.stringify(etm.moduleId)} is not registered`,
      };
    // ThresholdPreCheck + decision, in one atomic transition
    const d = await this.#state.thresholdDecide({
      taskId: etm.taskId,
      moduleId: etm.moduleId,
      moduleThreshold: module.errorThreshold ?? this.#moduleThreshold,
      taskThreshold: this.#taskThreshold,
      retryAfterMs: etm.error.retryAfterMs ?? 0,
      // a duplicate delivery of this ErrorTaskModel is counted once
      failureId: `${this.#keys.ptmKey(toAddress(etm))}@${etm.attempt}`,
    });
    const decision = THRESHOLD_NAMES[d.code];
    this.#count('error_task_decide_total', { decision });
    const fields = {
      run_id: etm.runId,
      task_id: etm.taskId,
      module_id: etm.moduleId,
      step_idx: etm.stepIdx,
      prefix_request: etm.prefixRequest,
      decision: decision.toLowerCase(),
      module_errors: d.moduleErrors,
      task_errors: d.taskErrors,
    };
    if (d.code === ThresholdCode.TERMINATE_MODULE || d.code === ThresholdCode.TERMINATE_TASK) {
      // the decision wrote the marks it reached (module first, then task): report each once
      for (const scope of d.marked) {
        if (scope === 'module') this.#stats.modulesTerminated++;
        else this.#stats.tasksTerminated++;
        this.#count('error_task_terminated_total', { scope });
        this.#log('warn', `${scope} terminated by its error threshold`, fields);
        this.#emit('TaskTerminatedByThreshold', {
          type: 'TaskTerminatedByThreshold',
          taskId: etm.taskId,
          runId: etm.runId,
          moduleId: etm.moduleId,
          scope,
          moduleErrors: d.moduleErrors,
          taskErrors: d.taskErrors,
        });
      }
      return ACK;
    }
    const retry: ParserTaskModel = {
      taskId: etm.taskId,
      runId: etm.runId,
      account: etm.account,
      platform: etm.platform,
      moduleId: etm.moduleId,
      stepIdx: etm.stepIdx,
      prefixRequest: etm.prefixRequest,
      epoch: etm.attempt,
    };
    if (etm.data !== undefined) retry.data = etm.data;
    if (etm.metadata !== undefined) retry.metadata = etm.metadata;
    const delayMs = this.#nodeRetry.delayFor(
      etm.attempt,
      etm.error.retryAfterMs === undefined ? undefined : { retryAfterMs: etm.error.retryAfterMs },
    );
    const node = toAddress(retry);
    const r = await this.#state.retrySchedule({
      node,
      attempt: etm.attempt,
      maxRetries: this.#maxNodeRetries,
      delayMs,
      message: OUTBOX_RETRY + encodeMessage({ kind: 'parser_task', body: retry }),
      allowed: etm.error.retryable !== false,
    });
    if (r === RetryScheduleCode.RETRY_SCHEDULED) {
      const pending = this.#pendingRetries.get(etm.taskId) ?? new Map<string, number>();
      const before = pending.size;
      pending.set(`${this.#keys.ptmKey(node)}@${etm.attempt}`, performance.now() + delayMs);
      this.#pendingRetries.set(etm.taskId, pending);
      if (pending.size > before) this.#stats.retriesScheduled++;
      this.#count('error_task_retry_total');
      this.#touch(etm.taskId);
      this.#log('info', `retry ${etm.attempt} scheduled in ${delayMs} ms`, fields);
      this.#schedulePump(delayMs);
      return ACK;
    }
    const reason =
      r === RetryScheduleCode.MAX_RETRY_EXCEEDED
        ? 'max_retries'
        : etm.error.retryable === false
          ? 'not_retryable'
          : 'not_allowed';
    this.#stats.nodesGivenUp++;
    this.#count('error_task_given_up_total', { reason });
    this.#log('warn', `node given up (${reason})`, { ...fields, decision: `give_up:${reason}` });
    this.#emit('NodeFailed', {
      type: 'NodeFailed',
      ...eventBase(etm),
      attempt: etm.attempt,
      reason,
      error: etm.error,
    });
    return ACK;
  }

  async #loadTask(taskId: string): Promise<TaskRecord> {
    return this.#taskCache.getOrCompute('task', taskId, async () => {
      const text = await this.#store.get(this.#keys.taskRecord(taskId));
      if (text === null) throw new TaskNotFound(taskId);
      return JSON.parse(text) as TaskRecord;
    });
  }

  async #taskInfo(record: TaskRecord, ptm: ParserTaskModel): Promise<TaskInfo> {
    const base = {
      taskId: ptm.taskId,
      runId: ptm.runId,
      account: ptm.account,
      platform: ptm.platform,
      metadata: Object.freeze(ptm.metadata ?? record.metadata ?? {}),
    };
    let loginInfo: JsonObject | undefined;
    if (this.#loadLoginInfo) {
      const load = this.#loadLoginInfo;
      loginInfo = (
        await this.#loginCache.getOrCompute(ptm.moduleId, ptm.taskId, async () => ({
          value: await load(base, ptm.moduleId),
        }))
      ).value;
    } else {
      loginInfo = this.#loginInfo.get(ptm.taskId);
    }
    return { ...base, loginInfo: loginInfo === undefined ? undefined : Object.freeze(loginInfo) };
  }

  // ── outbox relay and retry pump ───────────────────────────────────────────

  #relay(taskId: string): void {
    this.#relayDirty.add(taskId);
    if (!this.#relayRunning) void this.#runRelay();
  }

  async #runRelay(): Promise<void> {
    this.#relayRunning = true;
    try {
      while (this.#relayDirty.size > 0) {
        const taskId = this.#relayDirty.values().next().value as string;
        this.#relayDirty.delete(taskId);
        let entries: string[];
        // the lease runs from the take (server time); measured from before the call, locally
        const leasedUntil = performance.now() + this.#relayLeaseMs * 0.8;
        try {
          entries = await this.#state.takeOutbox(taskId, 256, this.#relayLeaseMs);
        } catch (error) {
          this.#log('error', 'outbox relay: take failed; will retry', {
            task_id: taskId,
            error: String(error),
          });
          if (this.#stopped) break;
          this.#relayDirty.add(taskId);
          await sleep(200);
          continue;
        }
        if (entries.length === 256) this.#relayDirty.add(taskId);
        // publish, then acknowledge: an entry whose relay dies in between is leased again later
        const published: string[] = [];
        for (const entry of entries) {
          if (performance.now() > leasedUntil) {
            // the lease on the rest of this batch is running out: another relay may take those
            // entries any moment, and publishing them here too would duplicate them. Leave them;
            // the next take (this relay's, right away, or another's) gets them back.
            this.#relayDirty.add(taskId);
            this.#count('outbox_lease_expired_total');
            break;
          }
          if (await this.#relayEntry(entry)) published.push(entry);
        }
        try {
          await this.#state.ackOutbox(taskId, published);
        } catch (error) {
          this.#log('warn', 'outbox relay: ack failed; the entries will be published again', {
            task_id: taskId,
            error: String(error),
          });
        }
      }
    } finally {
      this.#relayRunning = false;
    }
  }

  /** Publishes one outbox entry; false when it could not be (it stays leased, then comes back). */
  async #relayEntry(entry: string): Promise<boolean> {
    const kind = entry[0];
    const body = entry.slice(1);
    if (kind === OUTBOX_PTM || kind === OUTBOX_RETRY || kind === OUTBOX_ETM) {
      const queue = kind === OUTBOX_ETM ? this.#queues.error : this.#queues.parser;
      try {
        await queue.push(body);
      } catch (error) {
        this.#log('warn', 'outbox relay: publish failed; the entry will be published again', {
          queue: queue.name,
          error: (error as Error).message,
        });
        return false;
      }
      if (kind === OUTBOX_ETM) return true;
      const source = kind === OUTBOX_RETRY ? 'retry' : 'commit';
      this.#count('parser_task_produced_total', { source });
      // the message is validated by its consumer; read it here only when someone needs it
      const watched = source === 'retry' && this.#pendingRetries.size > 0;
      if (!watched && !this.#emitter.has('ParserTaskProduced')) return true;
      let input: ChainInput | undefined;
      try {
        input = normalizeMessage(body);
      } catch {
        input = undefined; // the consumer dead-letters it with its reason
      }
      if (input?.kind === 'parser_task') {
        if (watched) {
          this.#pendingRetries
            .get(input.node.taskId)
            ?.delete(`${this.#keys.ptmKey(toAddress(input.node))}@${input.node.epoch ?? 0}`);
          if (this.#pendingRetries.get(input.node.taskId)?.size === 0)
            this.#pendingRetries.delete(input.node.taskId);
        }
        this.#emit('ParserTaskProduced', {
          type: 'ParserTaskProduced',
          ...eventBase(input.node),
          source,
        });
      }
      return true;
    }
    if (kind === OUTBOX_ITEM) {
      let item: ChainItem;
      try {
        item = JSON.parse(body) as ChainItem;
      } catch {
        this.#deadLetter('outbox', entry, 'relay: malformed item entry');
        return true;
      }
      this.#stats.items++;
      this.#count('items_total', { module: item.moduleId });
      if (this.#onItem) {
        try {
          await this.#onItem(item);
        } catch (error) {
          this.#count('item_sink_error_total', { module: item.moduleId });
          this.#log('error', 'onItem threw; the item is not handed over again', {
            task_id: item.taskId,
            module_id: item.moduleId,
            item_id: item.itemId,
            error: String(error),
          });
        }
      }
      this.#emit('ItemProduced', { type: 'ItemProduced', item });
      return true;
    }
    this.#deadLetter('outbox', entry, 'relay: unknown outbox entry');
    await this.#persistDeadLetter(this.#queues.parser, entry, 'relay: unknown outbox entry');
    return true;
  }

  #schedulePump(delayMs: number): void {
    if (this.#stopped) return;
    const wait = Math.max(this.#retryPollMs, Math.min(delayMs, 1000));
    if (this.#pumpTimer !== undefined || this.#pumpRunning) return;
    this.#pumpTimer = unrefTimeout(() => {
      this.#pumpTimer = undefined;
      void this.#runPump();
    }, wait);
  }

  async #runPump(): Promise<void> {
    if (this.#pumpRunning) return;
    this.#pumpRunning = true;
    try {
      const now = performance.now();
      for (const [taskId, pending] of [...this.#pendingRetries]) {
        await this.#promote(taskId);
        if (this.#sharedQueues) {
          // another worker (or the sweep) may have promoted and published it: stop watching a
          // retry well past its due time; the store keeps it until it is published
          for (const [key, due] of pending) if (now - due > this.#relayLeaseMs) pending.delete(key);
          if (pending.size === 0) this.#pendingRetries.delete(taskId);
        }
      }
    } finally {
      this.#pumpRunning = false;
    }
    if (this.#pendingRetries.size > 0) this.#schedulePump(this.#retryPollMs);
  }

  /** Moves the task's due retries into its outbox (once, whoever polls) and relays them. */
  async #promote(taskId: string): Promise<void> {
    let due: string[];
    try {
      due = await this.#state.promoteDueRetries(taskId, 256);
    } catch (error) {
      this.#log('error', 'retry pump: promotion failed; will retry', {
        task_id: taskId,
        error: String(error),
      });
      return;
    }
    if (due.length > 0) this.#relay(taskId);
  }

  /** Records (at most every few seconds per task) that a task is active, for the sweeps. */
  #touch(taskId: string): void {
    if (!this.#sharedQueues) return; // only sweeps read the index, and only shared queues sweep
    const now = performance.now();
    const last = this.#touched.get(taskId);
    if (last !== undefined && now - last < Math.min(30_000, this.#sweepWindowMs / 4)) return;
    this.#touched.set(taskId, now);
    if (this.#touched.size > 10_000) this.#touched.clear();
    this.#state.touchTask(taskId).catch((error: unknown) => {
      this.#touched.delete(taskId);
      this.#log('warn', 'could not record task activity', {
        task_id: taskId,
        error: String(error),
      });
    });
  }

  /**
   * Shared queues: one process at a time (a lock) visits the recently active tasks, promotes
   * their due retries, recovers expired leases (`ptm_recover_zombie`) and relays their outboxes — what a process that died left behind (a commit
   * it did not relay, entries whose lease ran out, retries it would have pumped) goes on.
   */
  #scheduleSweep(): void {
    if (this.#stopped || !this.#sharedQueues) return;
    this.#sweepTimer = unrefTimeout(() => {
      this.#sweepTimer = undefined;
      void this.#sweep().finally(() => this.#scheduleSweep());
    }, this.#sweepIntervalMs);
  }

  async #sweep(): Promise<void> {
    if (this.#sweepRunning) return;
    this.#sweepRunning = true;
    try {
      const mine = await this.#state.tryLock('sweep', this.#workerId, this.#sweepIntervalMs * 3);
      if (!mine) return;
      const tasks = await this.#state.activeTasks(this.#sweepWindowMs, 10_000);
      for (const taskId of tasks) {
        if (this.#stopped) return;
        await this.#promote(taskId);
        this.#relay(taskId);
        // zombie leases: nodes whose worker died mid-step go back to pending (fenced: the dead
        // owner's late commit is refused); the queue re-delivers their message to a live worker
        const recovered = await this.#state.recoverExpired(taskId, 256);
        if (recovered > 0) {
          this.#stats.zombiesRecovered += recovered;
          this.#metrics.increment('ptm_zombie_recovered_total', {}, recovered);
          this.#log('info', `sweep: ${recovered} expired lease(s) recovered`, { task_id: taskId });
        }
      }
      this.#count('sweep_total');
    } catch (error) {
      this.#log('warn', 'sweep failed; the next one will try again', { error: String(error) });
    } finally {
      this.#sweepRunning = false;
    }
  }

  // ── bookkeeping ────────────────────────────────────────────────────────────

  #isIdle(): boolean {
    const q = this.#queues;
    return (
      this.#handlers === 0 &&
      !this.#relayRunning &&
      this.#relayDirty.size === 0 &&
      !this.#pumpRunning &&
      this.#pendingRetries.size === 0 &&
      q.task.size() + q.parser.size() + q.error.size() === 0 &&
      q.task.inFlight() + q.parser.inFlight() + q.error.inFlight() === 0
    );
  }

  #deadLetter(queue: string, message: string, reason: string): void {
    this.#stats.deadLettered++;
    this.#count('dead_letter_total', { queue, reason: reason.split(':')[0] ?? 'unknown' });
    this.#deadLetters.push({ queue, reason, message, at: Date.now() });
    if (this.#deadLetters.length > 1000) this.#deadLetters.shift();
    this.#log('warn', `message dead-lettered: ${reason}`, { queue, decision: 'dead_letter' });
    this.#emit('MessageDeadLettered', { type: 'MessageDeadLettered', queue, reason, message });
  }

  /** Also records a dead letter in the queue's durable store, when it has one. Never throws. */
  async #persistDeadLetter(queue: ChainQueue<string>, message: string, reason: string) {
    if (typeof queue.deadLetter !== 'function') return;
    try {
      await queue.deadLetter(message, reason);
    } catch (error) {
      this.#log('error', 'could not record a dead letter durably (kept in memory only)', {
        queue: queue.name,
        error: String(error),
      });
    }
  }

  #skip(reason: string): void {
    this.#stats.skipped[reason] = (this.#stats.skipped[reason] ?? 0) + 1;
  }

  #count(name: string, labels?: Record<string, string>): void {
    if (name === 'ptm_claim_total' && labels?.result)
      this.#stats.claims[labels.result] = (this.#stats.claims[labels.result] ?? 0) + 1;
    else if (name === 'ptm_commit_total' && labels?.result)
      this.#stats.commits[labels.result] = (this.#stats.commits[labels.result] ?? 0) + 1;
    else if (name === 'fallback_gate_hit_total') this.#stats.fallbacks++;
    else if (name === 'fallback_gate_block_total') this.#stats.fallbacksRefused++;
    this.#metrics.increment(name, labels);
  }

  #emit<K extends ChainEventName>(name: K, event: ChainEventMap[K]): void {
    if (this.#emitter.has(name)) this.#emitter.emit(name, event);
  }

  #log(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields: LogFields): void {
    try {
      this.#logger[level](message, { ...fields, runtime_mode: this.runtimeMode });
    } catch {
      // a broken logger never breaks the engine
    }
  }
}

const THRESHOLD_NAMES = ['CONTINUE', 'RETRY_AFTER', 'TERMINATE_MODULE', 'TERMINATE_TASK'] as const;
