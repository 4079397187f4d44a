/**
 * The engine's telemetry room: every event the engine reports goes through one typed method
 * here, which updates its `stats()` counter and its metric together. Logging goes through
 * {@link writeLog}, the one function that calls the logger.
 */
import { Emitter } from '../../internal/emitter.js';
import { redactMessage } from './redact.js';
import { silentLogger, type LogFields, type LogLevel, type Logger } from '../../observe/logger.js';
import { MetricName as M } from '../../observe/metric-names.js';
import { noopMetrics, type MetricLabels, type Metrics } from '../../observe/metrics.js';
import type {
  ChainDeadLetter,
  ChainEngineStats,
  ChainEventMap,
  ChainEventName,
  ChainItem,
} from './types.js';

export type { LogLevel } from '../../observe/logger.js';

/**
 * Whether a logger writes `level`: never for the silent logger; as the logger says where it can
 * tell (pino's `isLevelEnabled`); else yes. Lets hot paths skip building a line nobody writes.
 */
export function levelCheck(logger: unknown): (level: LogLevel) => boolean {
  if (logger === undefined || logger === silentLogger) return () => false;
  const check = (logger as { isLevelEnabled?: unknown }).isLevelEnabled;
  if (typeof check !== 'function') return () => true;
  return (level) => {
    try {
      return check.call(logger, level) !== false;
    } catch {
      return true;
    }
  };
}

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
    logger[level](fields, message);
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
  /** A failure commit answered (ERROR_EMIT_OK: the node's ErrorTaskModel is queued). */
  commitError(result: (typeof COMMIT_ERROR_NAMES)[number], moduleId: string): void;
  /** A step's generate returned requests, or failed. */
  generated(moduleId: string, ok: boolean): void;
  /** A step's parse returned a valid output, or failed. */
  parsed(moduleId: string, ok: boolean): void;
  /** A claimed node ended (committed, failed, or its commit was rejected) after `ms`. */
  processed(moduleId: string, outcome: 'committed' | 'failed' | 'rejected', ms: number): void;
  /** The fallback gate decided. */
  fallback(decision: 'allowed' | 'refused'): void;
  /** Claims took over `count` expired leases (their holder died or stalled mid-step). */
  zombiesRecovered(count: number): void;
  /** A commit skipped routed inputs of a module as duplicates of their key. */
  deduplicated(moduleId: string, count: number): void;
  /** Emits an event to the engine's listeners. */
  emit<K extends ChainEventName>(name: K, event: ChainEventMap[K]): void;
  /** Whether anyone listens to `name` (to skip building an event nobody reads). */
  listens(name: ChainEventName): boolean;
  /** `count` node messages were produced (a commit's successors handed to the parser stream). */
  parserTaskProduced(source: 'root' | 'commit' | 'retry', count?: number): void;
  /** Writes a log line. */
  log(level: LogLevel, message: string, fields: LogFields): void;
  /** Whether a line at `level` is written (build its fields only then). */
  logs(level: LogLevel): boolean;
}

/** Options of {@link EngineTelemetry}. @internal */
export interface EngineTelemetryOptions {
  logger: Logger;
  metrics: Metrics;
  runtimeMode: 'single_node' | 'distributed';
  /** Whether the logger writes a level (see {@link levelCheck}). @defaultValue always */
  logs?: (level: LogLevel) => boolean;
}

/**
 * The engine's stats, metrics, events, logs and in-memory dead letters, updated together.
 * @internal
 */
export class EngineTelemetry implements NodeTelemetry {
  readonly #logger: Logger;
  readonly #logs: (level: LogLevel) => boolean;
  readonly #metrics: Metrics;
  /** Whether metrics are recorded at all (gauges and timings are skipped when not). */
  readonly #measured: boolean;
  readonly #runtimeMode: 'single_node' | 'distributed';
  readonly #emitter: Emitter<ChainEventMap>;
  readonly #deadLetters: ChainDeadLetter[] = [];
  readonly #stats: ChainEngineStats;
  readonly #labels = new LabelCache();

  constructor(options: EngineTelemetryOptions) {
    this.#logger = options.logger;
    this.#logs = options.logs ?? (() => true);
    this.#metrics = options.metrics;
    this.#measured = options.metrics !== noopMetrics;
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
      deduplicated: 0,
      fallbacksRefused: 0,
      modulesTerminated: 0,
      tasksTerminated: 0,
      deadLettered: 0,
      zombiesRecovered: 0,
      cacheHits: 0,
      cacheMisses: 0,
      received: { task: 0, parser: 0, error: 0 },
      loginInfoRuns: 0,
      skipped: {},
    };
  }

  /** Whether metrics are recorded (not the no-op default): timings are taken only then. */
  get measured(): boolean {
    return this.#measured;
  }

  // ── logs and events ────────────────────────────────────────────────────────

  logs(level: LogLevel): boolean {
    return this.#logs(level);
  }

  log(level: LogLevel, message: string, fields: LogFields): void {
    if (!this.#logs(level)) return;
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
  stats(cache: { hits: number; misses: number }, loginInfoRuns = 0): ChainEngineStats {
    const stats = structuredClone(this.#stats);
    stats.cacheHits = cache.hits;
    stats.cacheMisses = cache.misses;
    stats.loginInfoRuns = loginInfoRuns;
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
    this.#metrics.increment(M.TASK_SUBMITTED);
  }

  /** A delivery was received from the queue of `role`. */
  received(role: 'task' | 'parser' | 'error'): void {
    this.#stats.received[role]++;
    if (this.#measured) this.#metrics.increment(M.TASK_INGRESS, INGRESS_LABELS[role]);
  }

  /** The ingress dead-lettered or released a delivery after a failure at `stage`. */
  ingressFailed(stage: string): void {
    this.#metrics.increment(M.TASK_INGRESS_FAILED, { stage });
  }

  /** LoadTask found no record of the task (expired, or never submitted to this store). */
  stateExpired(): void {
    this.#metrics.increment(M.STATE_EXPIRED);
  }

  /** A message was dropped as obsolete. */
  skipped(reason: string): void {
    this.#stats.skipped[reason] = (this.#stats.skipped[reason] ?? 0) + 1;
    this.#metrics.increment(M.MESSAGE_SKIPPED, { reason });
  }

  /** A message was set aside with a reason (counted once, here; kept without login info). */
  deadLettered(queue: string, raw: string, reason: string): void {
    const message = redactMessage(raw);
    this.#stats.deadLettered++;
    this.#metrics.increment(M.CHAIN_DEAD_LETTER, {
      queue,
      reason: reason.split(':')[0] ?? 'unknown',
    });
    this.#deadLetters.push({ queue, reason, message, at: Date.now() });
    if (this.#deadLetters.length > 1000) this.#deadLetters.shift();
    this.log('warn', `message dead-lettered: ${reason}`, { queue, decision: 'dead_letter' });
    this.emit('MessageDeadLettered', { type: 'MessageDeadLettered', queue, reason, message });
  }

  /** The waiting and in-flight messages of a queue, as this process sees them. */
  queueLevels(queue: { name: string; size(): number; inFlight(): number }): void {
    if (!this.#measured) return;
    const labels = this.#labels.get('queue', queue.name);
    this.#metrics.gauge(M.QUEUE_DEPTH, queue.size(), labels);
    this.#metrics.gauge(M.QUEUE_IN_FLIGHT, queue.inFlight(), labels);
  }

  claim(result: (typeof CLAIM_NAMES)[number]): void {
    this.#stats.claims[result] = (this.#stats.claims[result] ?? 0) + 1;
    if (this.#measured) this.#metrics.increment(M.PTM_CLAIM, this.#labels.get('result', result));
  }

  generated(moduleId: string, ok: boolean): void {
    if (!this.#measured) return;
    this.#metrics.increment(
      ok ? M.MODULE_STEP_GENERATE : M.MODULE_STEP_GENERATE_FAILED,
      this.#labels.get('module', moduleId),
    );
  }

  parsed(moduleId: string, ok: boolean): void {
    if (!this.#measured) return;
    this.#metrics.increment(
      ok ? M.PARSER_SUCCESS : M.PARSER_FAILED,
      this.#labels.get('module', moduleId),
    );
  }

  commit(result: (typeof COMMIT_NAMES)[number]): void {
    this.#stats.commits[result] = (this.#stats.commits[result] ?? 0) + 1;
    if (!this.#measured) return;
    this.#metrics.increment(M.PTM_COMMIT, this.#labels.get('result', result));
    if (result === 'COMMIT_OK') this.#metrics.increment(M.ADVANCE_GATE_WIN);
    else if (result === 'CAS_CONFLICT') this.#metrics.increment(M.ADVANCE_GATE_LOST);
  }

  commitError(result: (typeof COMMIT_ERROR_NAMES)[number], moduleId: string): void {
    this.#metrics.increment(M.PTM_COMMIT_ERROR, { result });
    if (result === 'ERROR_EMIT_OK') {
      this.#stats.nodeFailures++;
      this.#metrics.increment(M.ERROR_TASK_EMITTED, { module: moduleId });
    }
  }

  processed(moduleId: string, outcome: 'committed' | 'failed' | 'rejected', ms: number): void {
    if (!this.#measured) return;
    this.#metrics.observe(
      M.PTM_PROCESSING_DURATION,
      ms,
      this.#labels.pair('module', moduleId, 'outcome', outcome),
    );
  }

  fallback(decision: 'allowed' | 'refused'): void {
    if (decision === 'allowed') {
      this.#stats.fallbacks++;
      this.#metrics.increment(M.FALLBACK_GATE_HIT);
    } else {
      this.#stats.fallbacksRefused++;
      this.#metrics.increment(M.FALLBACK_GATE_BLOCK);
    }
  }

  deduplicated(moduleId: string, count: number): void {
    if (count === 0) return;
    this.#stats.deduplicated += count;
    this.#metrics.increment(M.NODE_DEDUPLICATED, { module: moduleId }, count);
  }

  /** A ParserTaskModel was put on the parser queue. */
  parserTaskProduced(source: 'root' | 'commit' | 'retry', count = 1): void {
    if (!this.#measured || count === 0) return;
    this.#metrics.increment(M.PARSER_TASK_PRODUCED, this.#labels.get('source', source), count);
  }

  /** One download try started. */
  download(moduleId: string): void {
    this.#stats.downloads++;
    if (this.#measured) this.#metrics.increment(M.DOWNLOAD, this.#labels.get('module', moduleId));
  }

  /** A download is tried again inside one node attempt. */
  downloadRetry(): void {
    this.#stats.downloadRetries++;
    this.#metrics.increment(M.DOWNLOAD_RETRY);
  }

  /** An output item was relayed to the sink. */
  item(item: ChainItem): void {
    this.#stats.items++;
    if (this.#measured) this.#metrics.increment(M.ITEMS, this.#labels.get('module', item.moduleId));
  }

  /** `onItem` threw. */
  itemSinkError(moduleId: string): void {
    this.#metrics.increment(M.ITEM_SINK_ERROR, { module: moduleId });
  }

  /** A relay left the rest of a batch: its lease was running out. */
  outboxLeaseExpired(): void {
    this.#metrics.increment(M.OUTBOX_LEASE_EXPIRED);
  }

  /** The threshold transition decided for an ErrorTaskModel. */
  errorTaskDecided(decision: (typeof THRESHOLD_NAMES)[number]): void {
    this.#metrics.increment(M.ERROR_TASK_DECIDE, { decision });
  }

  /** A module or a task was terminated by its threshold. */
  terminated(scope: 'module' | 'task'): void {
    if (scope === 'module') this.#stats.modulesTerminated++;
    else this.#stats.tasksTerminated++;
    this.#metrics.increment(M.ERROR_TASK_TERMINATED, { scope });
  }

  /** A node retry was scheduled (a duplicate of one this process scheduled is not counted). */
  retryScheduled(): void {
    this.#stats.retriesScheduled++;
    this.#metrics.increment(M.ERROR_TASK_RETRY);
  }

  /** A node was given up. */
  givenUp(reason: string): void {
    this.#stats.nodesGivenUp++;
    this.#metrics.increment(M.ERROR_TASK_GIVEN_UP, { reason });
  }

  /** Claims took over `count` expired leases (their holder died or stalled mid-step). */
  zombiesRecovered(count: number): void {
    this.#stats.zombiesRecovered += count;
    this.#metrics.increment(M.PTM_ZOMBIE_RECOVER, {}, count);
  }

  /** A sweep round completed. */
  swept(): void {
    this.#metrics.increment(M.SWEEP);
  }

  /** A state transition answered after `ms`. */
  scriptDone(script: string, ms: number): void {
    this.#metrics.observe(M.STATE_SCRIPT_DURATION, ms, this.#labels.get('script', script));
  }

  /** A state transition failed with an error of `kind` (its code). */
  scriptFailed(script: string, kind: string): void {
    this.#metrics.increment(M.STATE_SCRIPT_ERROR, { script, kind });
  }
}

const INGRESS_LABELS = {
  task: { kind: 'task' },
  parser: { kind: 'parser_task' },
  error: { kind: 'error_task' },
} as const;

/**
 * The label objects of the per-node metrics, built once per label value: a node's claim,
 * commit, download, parse and script timings pass the same object each time (no allocation,
 * and a sink may key its series by it). A sink must not change the labels it is given.
 */
class LabelCache {
  readonly #one = new Map<string, Map<string, MetricLabels>>();
  readonly #two = new Map<string, MetricLabels>();

  /** `{ [name]: value }`. */
  get(name: string, value: string): MetricLabels {
    let byValue = this.#one.get(name);
    if (byValue === undefined) this.#one.set(name, (byValue = new Map()));
    let labels = byValue.get(value);
    if (labels === undefined) {
      // a label taking ever new values (it never should) does not grow the cache without end
      if (byValue.size >= 1024) byValue.clear();
      byValue.set(value, (labels = { [name]: value }));
    }
    return labels;
  }

  /** `{ [a]: av, [b]: bv }`. */
  pair(a: string, av: string, b: string, bv: string): MetricLabels {
    const key = `${a}\u0000${av}\u0000${b}\u0000${bv}`;
    let labels = this.#two.get(key);
    if (labels === undefined) {
      if (this.#two.size >= 1024) this.#two.clear();
      this.#two.set(key, (labels = { [a]: av, [b]: bv }));
    }
    return labels;
  }
}
