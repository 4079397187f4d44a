/**
 * Public types of the chain engine: its options, the items it emits, its events and its stats.
 */
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { Logger } from '../../observe/logger.js';
import type { Metrics } from '../../observe/metrics.js';
import type { RateLimiter } from '../../rate-limit/index.js';
import type { RateLimiterOptions } from '../../rate-limit/index.js';
import type { RetryPolicy, RetryPolicyOptions } from '../../retry/index.js';
import type { CacheService } from '../../store/index.js';
import type { ChainErrorInfo, JsonObject, JsonValue } from '../messages.js';
import type { ChainRequest, DownloadResult, ModuleDefinition, TaskInfo } from '../module.js';
import type { NodeEventId } from '../node-id.js';
import type { ChainQueue } from '../queue.js';
import type { ChainStateStore, RunNodeCounts } from '../state/index.js';

/** Fetches one request. Throw (or return a 408/429/5xx status) to signal a failure. */
export type Downloader = (
  request: Readonly<ChainRequest> & { readonly id: string; readonly method: string },
  context: DownloadContext,
) => Promise<DownloadResult>;

/** What a {@link Downloader} receives besides the request. */
export interface DownloadContext {
  /** Aborted on timeout, when the engine stops, or when the node's work is abandoned. */
  signal: AbortSignal;
  /** The module the request belongs to. */
  moduleId: string;
  /** The task the request belongs to. */
  taskId: string;
  /** 1 for the first try, 2 for the first retry, … */
  attempt: number;
}

/** The three queues the engine reads; in-memory by default, Redis Streams in distributed mode. */
export interface ChainQueues {
  /** TaskModel messages (encoded). */
  task: ChainQueue<string>;
  /** ParserTaskModel messages (encoded). */
  parser: ChainQueue<string>;
  /** ErrorTaskModel messages (encoded). */
  error: ChainQueue<string>;
}

/** Concurrency of each stage of the engine. */
export interface ChainConcurrency {
  /** TaskModel messages handled at once (LoadTask → BuildModules → dispatch). @defaultValue 4 */
  task?: number;
  /** Downloads in flight at once, over all modules. @defaultValue 16 */
  download?: number;
  /**
   * The old name of {@link ChainConcurrency.download}; still accepted (a warning is logged once).
   * @deprecated use `download`
   */
  publish?: number;
  /** Nodes (ParserTaskModels: generate → download → parse → commit) processed at once. @defaultValue 8 */
  parser?: number;
  /** ErrorTaskModels decided at once. @defaultValue 2 */
  errorTask?: number;
}

/** Backoff of the retries of failed nodes (ErrorTaskModel → delayed ParserTaskModel). */
export interface NodeRetryOptions {
  /** Retries of one node before it is given up. @defaultValue 3 */
  maxRetries?: number;
  /** Delay before the first retry, in ms. @defaultValue 200 */
  initialDelayMs?: number;
  /** Largest delay, in ms. @defaultValue 10000 */
  maxDelayMs?: number;
  /** Growth of the delay per retry. @defaultValue 2 */
  multiplier?: number;
  /** Proportional jitter in [0, 1). @defaultValue 0.2 */
  jitter?: number;
}

/**
 * Hand-overs of an output item whose `onItem` threw: again after a backoff, from the outbox (the
 * entry stays there until the item is delivered or dead-lettered), at most `maxRetries` more
 * times; then the item is dead-lettered with its `itemId` and the error.
 */
export interface ItemRetryOptions {
  /** Hand-overs after the first before the item is dead-lettered. @defaultValue 5 */
  maxRetries?: number;
  /** Delay before the first hand-over again, in ms. @defaultValue 100 */
  initialDelayMs?: number;
  /** Largest delay, in ms. Keep the total under `relayLeaseMs`. @defaultValue 5000 */
  maxDelayMs?: number;
  /** Growth of the delay per try. @defaultValue 2 */
  multiplier?: number;
  /** Proportional jitter in [0, 1). @defaultValue 0.2 */
  jitter?: number;
}

/**
 * The item `onItem` receives from modules `M`: for a typed module, its `moduleId` and `item`
 * are typed (a union over the modules, told apart by `moduleId`).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ModuleItem<M extends ModuleDefinition<any, string>> =
  M extends ModuleDefinition<infer Item, infer Id>
    ? ChainItem<Item> & {
        /** The module that produced the item. */
        moduleId: Id;
      }
    : never;

/** Options of {@link createChainEngine}; `M` is the type of its modules (inferred). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface ChainEngineOptions<M extends ModuleDefinition<any, string> = ModuleDefinition> {
  /** The modules this engine can run (a TaskModel names them by id). */
  modules: M[];
  /**
   * Fetches requests. @defaultValue a `fetch`-based downloader that returns status, lower-case
   * headers and the body as text.
   */
  downloader?: Downloader;
  /**
   * Where the chain state lives. A Redis backend makes the runtime mode `distributed`, anything
   * else `single_node`. @defaultValue a new in-process `LocalBackend`
   */
  store?: CacheService;
  /** The state machine to use. @defaultValue `RedisChainState` on a Redis store, else `LocalChainState` */
  state?: ChainStateStore;
  /**
   * The queues. By default they follow the store, so that what the store keeps across a crash
   * the queues keep too: Redis Stream queues on a Redis store (`createRedisStreamQueues` over
   * the store's client and `keyPrefix`, consumer = `workerId`; closed by `stop()`), bounded
   * in-memory queues of `queueCapacity` on the in-process store. A durable store (`durable:
   * true`) needs durable queues passed here. In-memory queues over a Redis or durable store are
   * refused unless `allowVolatileQueues` is set.
   * @defaultValue queues that follow the store (see above)
   */
  queues?: ChainQueues;
  /**
   * Capacity of each default queue (in-memory: waiting + in flight; Redis Stream: entries in the
   * stream before producers wait). @defaultValue 1000 in memory, 10000 on Redis Streams
   */
  queueCapacity?: number;
  /**
   * Accept in-memory queues (the default ones or `MemoryQueue`s passed in) over a store that
   * outlives the process (a Redis or durable store). **Consequence:** messages waiting in those
   * queues die with the process. The state still knows the nodes that were never run, and the
   * next `start()` over the same store finds and queues them again (a bounded scan of the active
   * tasks), but until then that work waits, and other processes sharing the store never see it.
   * @defaultValue false (such a mix is refused with `ConfigError`)
   */
  allowVolatileQueues?: boolean;
  /** Concurrency of each stage. */
  concurrency?: ChainConcurrency;
  /**
   * Download rate limits, keyed by module id: a `RateLimiter`, or its options (each module's
   * `rateLimit` becomes an override). @defaultValue 100/s global, 20/s per module
   */
  rateLimit?: RateLimiter | RateLimiterOptions;
  /**
   * Retries of transient download failures (408/429/5xx, timeouts, network errors; Retry-After
   * honoured) inside one node attempt. @defaultValue 3 retries from 100 ms to 5 s
   */
  downloadRetry?: RetryPolicy | RetryPolicyOptions;
  /** Retries of failed nodes through ErrorTaskModels. */
  nodeRetry?: NodeRetryOptions;
  /** Hand-overs again of an item whose `onItem` threw, then its dead letter. */
  itemRetry?: ItemRetryOptions;
  /** Failures of one module of a task at which that module is terminated (>=). @defaultValue 10 */
  moduleErrorThreshold?: number;
  /** Failures of a task (all modules) at which the task is terminated (>=). @defaultValue 25 */
  taskErrorThreshold?: number;
  /**
   * Lease of a claimed node, in ms. A running node renews it every third of `leaseMs` (the
   * heartbeat), so a node may run longer; the lease only bounds how long a dead worker's node
   * stays locked. Keep it below the queues' `claimIdleMs` (30000 by default). @defaultValue 20000
   */
  leaseMs?: number;
  /** Timeout of one download try, in ms. @defaultValue 30000 */
  downloadTimeoutMs?: number;
  /** Let a non-first step whose `generate` fails rebuild its input from its prefix request once. @defaultValue true */
  fallback?: boolean;
  /** Loads the credentials of a module of a task (cached). @defaultValue the TaskModel's `loginInfo` */
  loadLoginInfo?: (
    task: Omit<TaskInfo, 'loginInfo'>,
    moduleId: string,
  ) => JsonObject | undefined | Promise<JsonObject | undefined>;
  /**
   * Receives every output item of every committed node: at least once, with a stable
   * {@link ChainItem.itemId} (again when it threw — see `itemRetry` — or when a process died
   * between handing the item over and acknowledging it). An item it keeps refusing is
   * dead-lettered with its `itemId` and the error.
   */
  onItem?: (item: ModuleItem<M>) => void | Promise<void>;
  /** Key layout. @defaultValue new ChainKeyBuilder() */
  keys?: ChainKeyBuilder;
  /** TTL of chain state keys, persisted requests and task records, in ms. @defaultValue 7 days */
  stateTtlMs?: number;
  /**
   * TTL of a run's state once the run has finished (done, terminated or cancelled), in ms,
   * instead of `stateTtlMs` (never longer). @defaultValue 1 day
   */
  finishedRunTtlMs?: number;
  /** Structured logs (pino-compatible). @defaultValue silent */
  logger?: Logger;
  /** Counters and histograms. @defaultValue none */
  metrics?: Metrics;
  /** This worker's name (lease owner prefix). @defaultValue host:pid:random */
  workerId?: string;
  /** How often due node retries are looked for, in ms. @defaultValue 50 */
  retryPollMs?: number;
  /**
   * How long `stop()` waits for in-flight nodes before aborting them, and then for aborted
   * nodes to settle and the outbox to be published, in ms (so `stop()` takes at most about
   * twice this). @defaultValue 10000
   */
  stopTimeoutMs?: number;
  /**
   * Lease of outbox entries taken by a relay, in ms: entries a relay took but did not
   * acknowledge (it died) are published again after it. @defaultValue 30000
   */
  relayLeaseMs?: number;
  /**
   * Shared queues only: how often one process (under a lock) sweeps the recently active tasks,
   * promoting due retries and relaying outboxes that a dead process left behind. @defaultValue 2000
   */
  sweepIntervalMs?: number;
  /** Shared queues only: tasks active within this window (ms) are swept. @defaultValue 3600000 */
  sweepWindowMs?: number;
}

/** What `submit()` resolves to: the task and the run it started (or joined). */
export interface SubmittedRun {
  /** The task. */
  taskId: string;
  /**
   * The run: the TaskModel's `runId` when it had one (submitting it again is a no-op for nodes
   * already done), else a fresh id — each submit without a `runId` starts a new run.
   */
  runId: string;
}

/** One output item, as handed to `onItem` and the `ItemProduced` event; `T` is the item's type. */
export interface ChainItem<T = JsonValue> {
  /**
   * Stable id of the item (node, request, position): the same on every delivery. Items are
   * committed exactly once; `onItem` is called at least once per item — more only when a
   * process dies between handing an item over and acknowledging it — so use this id to make
   * your sink idempotent.
   */
  itemId: string;
  /** The task. */
  taskId: string;
  /** The run. */
  runId: string;
  /** The module. */
  moduleId: string;
  /** The step whose parse produced the item. */
  stepIdx: number;
  /** The prefix request of the node that produced it. */
  prefixRequest: string;
  /** The request whose response produced it. */
  requestId: string;
  /** The item. */
  item: T;
}

/** Identity fields every node event carries: a `NodeId` without account and platform. */
export type NodeEventBase = NodeEventId;

/** Every event the engine emits, by name. */
export interface ChainEventMap {
  /** A ParserTaskModel was put on the parser queue (a successor after a commit, a retry, or a module's first step). */
  ParserTaskProduced: NodeEventId & {
    /** The event name. */
    type: 'ParserTaskProduced';
    /** Why: 'root', 'commit' or 'retry'. */
    source: 'root' | 'commit' | 'retry';
  };
  /** A node failed and one ErrorTaskModel was emitted for the failure. */
  ErrorTaskProduced: NodeEventId & {
    /** The event name. */
    type: 'ErrorTaskProduced';
    /** How many times the node has failed (1 for the first failure). */
    attempt: number;
    /** The failure. */
    error: ChainErrorInfo;
  };
  /** A node committed: its successors and items were produced, once. */
  ModuleStepAdvanced: NodeEventId & {
    /** The event name. */
    type: 'ModuleStepAdvanced';
    /** New successor nodes. */
    successors: number;
    /** Output items. */
    items: number;
    /** Whether this was the module's last step. */
    lastStep: boolean;
  };
  /**
   * A routed input was not made into a node: its de-duplication key was taken before in its run
   * and module (by any branch or worker). The node fields are those of the node whose parse
   * routed it.
   */
  InputDeduplicated: NodeEventBase & {
    /** The event name. */
    type: 'InputDeduplicated';
    /** The step the input was routed to. */
    targetStepIdx: number;
    /** The de-duplication key. */
    key: string;
  };
  /** A non-first step's generate failed and the fallback gate decided. */
  ModuleStepFallback: NodeEventId & {
    /** The event name. */
    type: 'ModuleStepFallback';
    /** 'allowed' (rebuilt from the prefix request) or 'refused' (a fallback already happened). */
    decision: 'allowed' | 'refused';
  };
  /** A module or a task reached its error threshold and was terminated. */
  TaskTerminatedByThreshold: {
    /** The event name. */
    type: 'TaskTerminatedByThreshold';
    /** The task. */
    taskId: string;
    /** The run. */
    runId: string;
    /** The module whose failure decided it. */
    moduleId: string;
    /** 'module' (that module stops) or 'task' (the task stops). */
    scope: 'module' | 'task';
    /** The module's failure count. */
    moduleErrors: number;
    /** The task's failure count. */
    taskErrors: number;
  };
  /** An output item was delivered. */
  ItemProduced: {
    /** The event name. */
    type: 'ItemProduced';
    /** The item. */
    item: ChainItem;
  };
  /** A node was given up: no retry left, or its failure is not retryable. */
  NodeFailed: NodeEventId & {
    /** The event name. */
    type: 'NodeFailed';
    /** Failures of the node. */
    attempt: number;
    /** Why no retry: 'max_retries' or 'not_retryable'. */
    reason: string;
    /** The last failure. */
    error: ChainErrorInfo;
  };
  /** A message was set aside with a reason instead of being processed. */
  MessageDeadLettered: {
    /** The event name. */
    type: 'MessageDeadLettered';
    /** The queue it came from. */
    queue: string;
    /** Why. */
    reason: string;
    /** The message as received. */
    message: string;
  };
}

/** The name of a chain event. */
export type ChainEventName = keyof ChainEventMap;
/** Any chain event (discriminated by `type`). */
export type ChainEvent = ChainEventMap[ChainEventName];

/** A dead-lettered message kept by the engine. */
export interface ChainDeadLetter {
  /** The queue it came from. */
  queue: string;
  /** Why it was set aside. */
  reason: string;
  /** The message as received. */
  message: string;
  /** When, in ms since the epoch. */
  at: number;
}

/** Counters of an engine since it was created. */
export interface ChainEngineStats {
  /** The runtime mode, from the store. */
  runtimeMode: 'single_node' | 'distributed';
  /** Tasks submitted. */
  tasksSubmitted: number;
  /** Claims by result (EXECUTE, DUPLICATE_DONE, …). */
  claims: Record<string, number>;
  /** Success commits by result (COMMIT_OK, FENCING_REJECT, …). */
  commits: Record<string, number>;
  /** Nodes that failed and emitted an ErrorTaskModel. */
  nodeFailures: number;
  /** Nodes given up (no retry left or not retryable). */
  nodesGivenUp: number;
  /** Node retries scheduled. */
  retriesScheduled: number;
  /** Downloads tried (every try, including download retries). */
  downloads: number;
  /** Download retries inside node attempts. */
  downloadRetries: number;
  /** Output items delivered. */
  items: number;
  /** Fallbacks allowed. */
  fallbacks: number;
  /** Routed inputs not made into nodes: their de-duplication key was taken before in their run and module. */
  deduplicated: number;
  /** Fallbacks refused by the gate. */
  fallbacksRefused: number;
  /** Modules terminated by threshold. */
  modulesTerminated: number;
  /** Tasks terminated by threshold. */
  tasksTerminated: number;
  /** Messages dead-lettered. */
  deadLettered: number;
  /**
   * Expired node leases this process's claims took over: nodes whose holder died or stalled
   * mid-step, run again here (the new claim's version fences the old holder's late commit).
   */
  zombiesRecovered: number;
  /** Task-record and login-info lookups served by the engine's `PluginCache` (no store read, no `loadLoginInfo` call). */
  cacheHits: number;
  /** Task-record and login-info lookups that had to load. */
  cacheMisses: number;
  /** Deliveries received by this process from each queue (re-deliveries included). */
  received: {
    /** From the task queue. */
    task: number;
    /** From the parser queue. */
    parser: number;
    /** From the error queue. */
    error: number;
  };
  /**
   * Runs whose login info, passed to `submit()`/`publish()`, this process still holds (dropped
   * when the run has no work left here, see docs/chain.md "Secrets").
   */
  loginInfoRuns: number;
  /** Messages dropped as obsolete (duplicate, stale, terminated), by reason. */
  skipped: Record<string, number>;
}

/**
 * A run as every process sharing the store sees it (`engine.runStatus(runId)`): one read of the
 * record the state transitions keep. A run is **done** when no node of it is queued or running
 * and no item of it waits in the outbox; **terminated** when it finished with a module (or its
 * task) stopped by a threshold or a module that was not registered; **cancelled** by
 * `cancelRun`.
 */
export interface RunStatus {
  /** The run. */
  runId: string;
  /** Its task. */
  taskId: string;
  /** Running until it finishes done, terminated or cancelled. */
  state: 'running' | 'done' | 'terminated' | 'cancelled';
  /** Its nodes, over all modules. */
  nodes: RunNodeCounts;
  /** Items committed (each handed to `onItem` once committed). */
  items: number;
  /** Failures recorded (each failed attempt of a node once). */
  errors: number;
  /** Per module: its state and counters. */
  modules: Record<
    string,
    {
      /** 'running', 'done', 'terminated' or 'skipped'. */
      state: string;
      /** The module's nodes. */
      nodes: RunNodeCounts;
      /** Items the module's nodes committed. */
      items: number;
      /** Failures recorded in the module. */
      errors: number;
    }
  >;
  /** When it started (ms since the epoch, the store's clock). */
  startedAt: number;
  /** When it last changed (ms since the epoch, the store's clock). */
  updatedAt: number;
  /** When it finished (ms since the epoch, the store's clock); absent while running. */
  finishedAt?: number;
}
