/**
 * The engine's telemetry room: every event the engine reports goes through one typed method
 * here, which updates its `stats()` counter and its metric together. Logging goes through
 * {@link writeLog}, the one function that calls the logger.
 */
import { Emitter } from '../../internal/emitter.js';
import type { LogFields, Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import type {
  ChainDeadLetter,
  ChainEngineStats,
  ChainEventMap,
  ChainEventName,
  ChainItem,
} from './types.js';

/** A log level the engine writes at. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Writes one log line. The only place the engine calls its logger: a change of the logger's
 * call shape is one line here. A logger that throws never breaks the engine.
 */
export function writeLog(
  logger: Logger,
  level: LogLevel,
  message: string,
  fields: LogFields,
): void {
  try {
    logger[level](message, fields);
  } catch {
    // a broken logger never breaks the engine
  }
}

/** Result names of a claim, by code. */
export const CLAIM_NAMES = [
  'EXECUTE',
  'DUPLICATE_DONE',
  'STALE_STEP',
  'OUT_OF_ORDER',
  'LOCKED_BY_OTHER',
] as const;
/** Result names of a success commit, by code. */
export const COMMIT_NAMES = [
  'COMMIT_OK',
  'FENCING_REJECT',
  'CAS_CONFLICT',
  'ALREADY_COMMITTED',
] as const;
/** Result names of a failure commit, by code. */
export const COMMIT_ERROR_NAMES = [
  'ERROR_EMIT_OK',
  'ERROR_ALREADY_EMITTED',
  'FENCING_REJECT',
] as const;
/** Decision names of the threshold transition, by code. */
export const THRESHOLD_NAMES = [
  'CONTINUE',
  'RETRY_AFTER',
  'TERMINATE_MODULE',
  'TERMINATE_TASK',
] as const;

/** What the module processor reports. @internal */
export interface NodeTelemetry {
  /** A claim answered. */
  claim(result: (typeof CLAIM_NAMES)[number]): void;
  /** A success commit answered. */
  commit(result: (typeof COMMIT_NAMES)[number]): void;
  /** A failure commit answered. */
  commitError(result: (typeof COMMIT_ERROR_NAMES)[number]): void;
  /** The fallback gate decided. */
  fallback(decision: 'allowed' | 'refused'): void;
  /** Emits an event to the engine's listeners. */
  emit<K extends ChainEventName>(name: K, event: ChainEventMap[K]): void;
  /** Writes a log line. */
  log(level: LogLevel, message: string, fields: LogFields): void;
}

/** Options of {@link EngineTelemetry}. @internal */
export interface EngineTelemetryOptions {
  logger: Logger;
  metrics: Metrics;
  runtimeMode: 'single_node' | 'distributed';
}

/**
 * The engine's stats, metrics, events, logs and in-memory dead letters, updated together.
 * @internal
 */
export class EngineTelemetry implements NodeTelemetry {
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #runtimeMode: 'single_node' | 'distributed';
  readonly #emitter: Emitter<ChainEventMap>;
  readonly #deadLetters: ChainDeadLetter[] = [];
  readonly #stats: ChainEngineStats;

  constructor(options: EngineTelemetryOptions) {
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#runtimeMode = options.runtimeMode;
    this.#emitter = new Emitter<ChainEventMap>((error) =>
      this.log('error', 'an event listener threw', { error: String(error) }),
    );
    this.#stats = {
      runtimeMode: options.runtimeMode,
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
  }

  // ── logs and events ────────────────────────────────────────────────────────

  log(level: LogLevel, message: string, fields: LogFields): void {
    writeLog(this.#logger, level, message, { ...fields, runtime_mode: this.#runtimeMode });
  }

  emit<K extends ChainEventName>(name: K, event: ChainEventMap[K]): void {
    if (this.#emitter.has(name)) this.#emitter.emit(name, event);
  }

  /** Whether anyone listens to `name` (to skip building an event nobody reads). */
  listens(name: ChainEventName): boolean {
    return this.#emitter.has(name);
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends ChainEventName>(event: K, listener: (event: ChainEventMap[K]) => void): () => void {
    return this.#emitter.on(event, listener);
  }

  // ── stats (a copy) and dead letters ───────────────────────────────────────

  /** A copy of the counters; `cache` adds the lookups of the engine's caches. */
  stats(cache: { hits: number; misses: number }): ChainEngineStats {
    const stats = structuredClone(this.#stats);
    stats.cacheHits = cache.hits;
    stats.cacheMisses = cache.misses;
    return stats;
  }

  /** The most recent 1000 dead letters. */
  deadLetters(): readonly ChainDeadLetter[] {
    return this.#deadLetters.slice();
  }

  // ── events of the engine ──────────────────────────────────────────────────

  /** A task was submitted through `submit()`. */
  taskSubmitted(): void {
    this.#stats.tasksSubmitted++;
  }

  /** A delivery was received from the queue of `role`. */
  received(role: 'task' | 'parser' | 'error'): void {
    this.#stats.received[role]++;
  }

  /** A message was dropped as obsolete. */
  skipped(reason: string): void {
    this.#stats.skipped[reason] = (this.#stats.skipped[reason] ?? 0) + 1;
  }

  /** A message was set aside with a reason (counted once, here). */
  deadLettered(queue: string, message: string, reason: string): void {
    this.#stats.deadLettered++;
    this.#metrics.increment('dead_letter_total', {
      queue,
      reason: reason.split(':')[0] ?? 'unknown',
    });
    this.#deadLetters.push({ queue, reason, message, at: Date.now() });
    if (this.#deadLetters.length > 1000) this.#deadLetters.shift();
    this.log('warn', `message dead-lettered: ${reason}`, { queue, decision: 'dead_letter' });
    this.emit('MessageDeadLettered', { type: 'MessageDeadLettered', queue, reason, message });
  }

  claim(result: (typeof CLAIM_NAMES)[number]): void {
    this.#stats.claims[result] = (this.#stats.claims[result] ?? 0) + 1;
    this.#metrics.increment('ptm_claim_total', { result });
  }

  commit(result: (typeof COMMIT_NAMES)[number]): void {
    this.#stats.commits[result] = (this.#stats.commits[result] ?? 0) + 1;
    this.#metrics.increment('ptm_commit_total', { result });
  }

  commitError(result: (typeof COMMIT_ERROR_NAMES)[number]): void {
    this.#metrics.increment('ptm_commit_error_total', { result });
  }

  fallback(decision: 'allowed' | 'refused'): void {
    if (decision === 'allowed') {
      this.#stats.fallbacks++;
      this.#metrics.increment('fallback_gate_hit_total');
    } else {
      this.#stats.fallbacksRefused++;
      this.#metrics.increment('fallback_gate_block_total');
    }
  }

  /** A node failed and its ErrorTaskModel was committed. */
  nodeFailed(): void {
    this.#stats.nodeFailures++;
  }

  /** A ParserTaskModel was put on the parser queue. */
  parserTaskProduced(source: 'root' | 'commit' | 'retry'): void {
    this.#metrics.increment('parser_task_produced_total', { source });
  }

  /** One download try started. */
  download(moduleId: string): void {
    this.#stats.downloads++;
    this.#metrics.increment('download_total', { module: moduleId });
  }

  /** A download is tried again inside one node attempt. */
  downloadRetry(): void {
    this.#stats.downloadRetries++;
    this.#metrics.increment('download_retry_total');
  }

  /** An output item was relayed to the sink. */
  item(item: ChainItem): void {
    this.#stats.items++;
    this.#metrics.increment('items_total', { module: item.moduleId });
  }

  /** `onItem` threw. */
  itemSinkError(moduleId: string): void {
    this.#metrics.increment('item_sink_error_total', { module: moduleId });
  }

  /** A relay left the rest of a batch: its lease was running out. */
  outboxLeaseExpired(): void {
    this.#metrics.increment('outbox_lease_expired_total');
  }

  /** The threshold transition decided for an ErrorTaskModel. */
  errorTaskDecided(decision: (typeof THRESHOLD_NAMES)[number]): void {
    this.#metrics.increment('error_task_decide_total', { decision });
  }

  /** A module or a task was terminated by its threshold. */
  terminated(scope: 'module' | 'task'): void {
    if (scope === 'module') this.#stats.modulesTerminated++;
    else this.#stats.tasksTerminated++;
    this.#metrics.increment('error_task_terminated_total', { scope });
  }

  /** A node retry was scheduled (`first`: not a duplicate of one this process scheduled). */
  retryScheduled(first: boolean): void {
    if (first) this.#stats.retriesScheduled++;
    this.#metrics.increment('error_task_retry_total');
  }

  /** A node was given up. */
  givenUp(reason: string): void {
    this.#stats.nodesGivenUp++;
    this.#metrics.increment('error_task_given_up_total', { reason });
  }

  /** A sweep recovered `count` expired leases. */
  zombiesRecovered(count: number): void {
    this.#stats.zombiesRecovered += count;
    this.#metrics.increment('ptm_zombie_recovered_total', {}, count);
  }

  /** A sweep round completed. */
  swept(): void {
    this.#metrics.increment('sweep_total');
  }
}
