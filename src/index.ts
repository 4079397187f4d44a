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
  isMocraError,
  isConfigError,
  isQueueFullError,
  isTaskCancelledError,
  isTaskTimeoutError,
  isBackendUnavailableError,
} from './errors.js';
export type { ErrorContext, MocraErrorOptions } from './errors.js';

// observability
export { silentLogger } from './observe/index.js';
export type { Logger, LogFields } from './observe/index.js';

// time
export type { Clock } from './internal/clock.js';

// rate limiting
export { RateLimiter } from './rate-limit/index.js';
export type {
  RateLimiterOptions,
  BucketOptions,
  RateDecision,
  AcquireOptions,
  RateLimiterStats,
} from './rate-limit/index.js';
