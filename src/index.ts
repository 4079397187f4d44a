/**
 * mocra: reliability primitives for Node.js services and an exactly-once task-chain engine.
 *
 * @packageDocumentation
 */

// errors
export {
  ErrorCode,
  MocraError,
  ConfigError,
  QueueFullError,
  TaskCancelledError,
  TaskTimeoutError,
  SchedulerClosedError,
  BackendUnavailableError,
  ScriptError,
  StoreCommandError,
  RateLimitedError,
  MessageInvalidError,
  DownloadError,
  RunNotFoundError,
  isMocraError,
  isConfigError,
  isQueueFullError,
  isTaskCancelledError,
  isTaskTimeoutError,
  isBackendUnavailableError,
} from './errors.js';
export type { ErrorContext, MocraErrorOptions } from './errors.js';

// observability
export {
  silentLogger,
  InMemoryMetrics,
  noopMetrics,
  prometheusMetrics,
  METRICS,
  MetricName,
} from './observe/index.js';
export type {
  MetricDefinition,
  MetricNameValue,
  Logger,
  LogFields,
  Metrics,
  MetricLabels,
  ObservationSummary,
  PromClientLike,
  PromMetricConfig,
  PromMetricClass,
  PromCounterLike,
  PromHistogramLike,
  PromGaugeLike,
  PromRegistryLike,
  PrometheusMetricsOptions,
} from './observe/index.js';

// time
export type { Clock } from './internal/clock.js';

// scheduler
export { createScheduler, TaskScheduler, PRIORITIES } from './scheduler/index.js';
export type {
  Priority,
  SchedulerEvents,
  SchedulerOptions,
  SchedulerRateLimiter,
  SchedulerStats,
  SubmitOptions,
  Task,
  TaskContext,
  TaskHandle,
  TaskSettledEvent,
  TaskStartedEvent,
  TaskState,
} from './scheduler/index.js';

// cache
export { PluginCache, canonicalKey } from './cache/index.js';
export type { CacheStats, GetOrComputeOptions, PluginCacheOptions } from './cache/index.js';

// retry
export { RetryPolicy, isRetryableError, isRetryableStatus } from './retry/index.js';
export type {
  JitterKind,
  RetryContext,
  RetryEvents,
  RetryPolicyOptions,
  RetryStats,
} from './retry/index.js';

// chain engine
export {
  createChainEngine,
  ModuleProcessorWithChain,
  fetchDownloader,
  parseRetryAfter,
} from './chain/engine/index.js';
export type {
  ChainConcurrency,
  ChainDeadLetter,
  ChainEngine,
  ChainEngineOptions,
  ChainEngineStats,
  ChainEvent,
  ChainEventMap,
  ChainEventName,
  ChainItem,
  ItemRetryOptions,
  ChainQueues,
  DownloadContext,
  Downloader,
  NodeEventBase,
  NodeOutcome,
  NodeRetryOptions,
  RunNodeCounts,
  RunStatus,
  SubmittedRun,
} from './chain/engine/index.js';
export { defineModule } from './chain/module.js';
export type {
  ChainRequest,
  DownloadResult,
  ModuleDefinition,
  ParseContext,
  ParseOutput,
  StepContext,
  StepDefinition,
  TaskInfo,
} from './chain/module.js';
export { normalizeMessage, encodeMessage, MESSAGE_VERSION } from './chain/messages.js';
export type {
  ChainErrorInfo,
  ChainInput,
  ChainMessage,
  ErrorTaskModel,
  JsonObject,
  JsonValue,
  NodeRef,
  ParserTaskModel,
  TaskModel,
} from './chain/messages.js';
export type { NodeId, NodeEventId } from './chain/node-id.js';
export { MemoryQueue } from './chain/queue.js';
export type { ChainQueue, Delivery, MemoryQueueOptions, PushOptions } from './chain/queue.js';
export { RedisStreamQueue } from './chain/redis-stream-queue.js';
export type { DeadLetter, RedisStreamQueueOptions } from './chain/redis-stream-queue.js';
export { createRedisStreamQueues } from './chain/stream-queues.js';
export type { RedisStreamQueues, RedisStreamQueuesOptions } from './chain/stream-queues.js';

// chain state machine
export {
  LocalChainState,
  RedisChainState,
  CHAIN_SCHEMA_VERSION,
  ClaimCode,
  CommitCode,
  CommitErrorCode,
  FallbackCode,
  RecoverCode,
  RetryScheduleCode,
  RunCancelCode,
  TerminateCode,
  TerminatedCode,
  ThresholdCode,
} from './chain/state/index.js';
export type {
  ChainStateOptions,
  ChainStateStore,
  ClaimInput,
  ClaimResult,
  CommitErrorInput,
  CommitSuccessInput,
  NodeAddress,
  RedisChainStateOptions,
  RetryScheduleInput,
  RunDispatchModule,
  RunModuleSnapshot,
  RunModuleState,
  RunRecordState,
  RunSnapshot,
  Successor,
  TerminatedResult,
  ThresholdInput,
  ThresholdResult,
} from './chain/state/index.js';

// keys
export { ChainKeyBuilder, KEY_LAYOUT_VERSION, escapeKeyPart } from './keys/index.js';
export type { ChainKeyBuilderOptions, PtmIdentity } from './keys/index.js';

// state store
export {
  createCacheService,
  LocalBackend,
  RedisBackend,
  jsonStore,
  keySlot,
} from './store/index.js';
export type {
  CacheService,
  CacheServiceBaseOptions,
  CacheServiceOptions,
  JsonStore,
  LocalBackendOptions,
  RangeOptions,
  RedisBackendOptions,
  RedisClusterConnection,
  RedisConnection,
  RunScriptOptions,
  RuntimeMode,
  ScriptReply,
  ScriptRunner,
  SetOptions,
} from './store/index.js';
// rate limiting
export { RateLimiter } from './rate-limit/index.js';
export type {
  RateLimiterOptions,
  BucketOptions,
  RateDecision,
  AcquireOptions,
  RateLimiterStats,
} from './rate-limit/index.js';

// the state transitions' result codes as types (one alias per transition)
export type * from './chain/state/result-codes.js';
