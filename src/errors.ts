/**
 * Every error mocra throws is a {@link MocraError} with a stable string `code`.
 *
 * Match on `code` (or use {@link isMocraError}) rather than `instanceof` when your process may
 * load two copies of mocra (for example an ESM and a CommonJS copy): the guards below check a
 * brand that is shared across copies, `instanceof` only sees its own copy's classes.
 *
 * @packageDocumentation
 */
import { isRetryableStatus } from './retry/status.js';

/**
 * The stable codes of every error mocra throws, by name.
 *
 * @example
 * ```ts
 * if (isMocraError(err, ErrorCode.QUEUE_FULL)) shed(request);
 * ```
 */
export const ErrorCode = {
  /** Options or arguments are invalid; the message names the field. Never retryable. */
  CONFIG_INVALID: 'CONFIG_INVALID',
  /** A bounded queue is at capacity and refused the item. */
  QUEUE_FULL: 'QUEUE_FULL',
  /** A task or wait was cancelled through its `AbortSignal` or handle. */
  TASK_CANCELLED: 'TASK_CANCELLED',
  /** A task ran past its timeout; its signal was aborted. */
  TASK_TIMEOUT: 'TASK_TIMEOUT',
  /**
   * A component (scheduler, store, queue) was used after it was closed or shut down. The same
   * code everywhere; never retryable.
   */
  CLOSED: 'CLOSED',
  /**
   * @deprecated Use {@link ErrorCode.CLOSED}: the scheduler now reports use after shutdown with
   * the code every module uses. Kept as an alias of the same value.
   */
  SCHEDULER_CLOSED: 'CLOSED',
  /**
   * The backing store (Redis) cannot be reached or did not answer in time (a dropped connection,
   * a command timeout, LOADING, BUSY, CLUSTERDOWN, TRYAGAIN, MASTERDOWN). Retryable.
   */
  BACKEND_UNAVAILABLE: 'BACKEND_UNAVAILABLE',
  /** Redis refused a write because it reached `maxmemory` (an `OOM` reply). Retryable. */
  BACKEND_OUT_OF_MEMORY: 'BACKEND_OUT_OF_MEMORY',
  /** Redis refused a command for another reason than the codes above. Not retryable. */
  STORE_COMMAND_FAILED: 'STORE_COMMAND_FAILED',
  /** A Redis script failed or returned something the library does not understand. */
  SCRIPT_FAILED: 'SCRIPT_FAILED',
  /** A store command was applied to a key holding the wrong kind of value (Redis `WRONGTYPE`). */
  WRONG_TYPE: 'WRONG_TYPE',
  /** A store value is not an integer, or an increment would overflow (Redis `ERR value is not an integer`). */
  NOT_AN_INTEGER: 'NOT_AN_INTEGER',
  /** A rate-limited wait would take longer than the caller allowed (`maxWaitMs`). */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A message on a queue is malformed; it is dead-lettered with this reason. */
  MESSAGE_INVALID: 'MESSAGE_INVALID',
  /** State written by another schema version was found; the run cannot continue safely. */
  SCHEMA_MISMATCH: 'SCHEMA_MISMATCH',
  /** A download answered with a failing HTTP status or could not complete. Retryable for 408, 429 and 5xx. */
  DOWNLOAD_FAILED: 'DOWNLOAD_FAILED',
  /**
   * A step's parse routed an input it may not: to an unknown step, with a key that is not a
   * non-empty string, or past the module's `maxRouteDepth`. Never retryable; the node's
   * ErrorTaskModel is dead-lettered with this reason.
   */
  ROUTE_INVALID: 'ROUTE_INVALID',
  /** No run has that id in this store (never submitted here, or its record expired). */
  RUN_NOT_FOUND: 'RUN_NOT_FOUND',
} as const;

/** The union of every stable error code. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Extra, machine-readable facts attached to an error. */
export interface ErrorContext {
  /** The option or argument that was wrong (ConfigError). */
  field?: string;
  /** The key (scheduler key, rate-limit key, store key) the error concerns. */
  key?: string;
  /** The task the error concerns. */
  taskId?: string;
  /** A hint: wait at least this long before trying again. */
  retryAfterMs?: number;
  /** Any other context. */
  [name: string]: unknown;
}

/** Options accepted by every mocra error constructor. */
export interface MocraErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Machine-readable context (field, key, taskId, retryAfterMs…). */
  context?: ErrorContext;
  /** Override whether a retry may succeed; each class has its own default. */
  retryable?: boolean;
}

const BRAND = Symbol.for('mocra.error');

/**
 * The base class of every error mocra throws.
 *
 * @example
 * ```ts
 * try { await scheduler.run(task); }
 * catch (err) { if (isMocraError(err)) console.log(err.code, err.context); }
 * ```
 */
export class MocraError extends Error {
  /** A stable code from {@link ErrorCode}. */
  readonly code: ErrorCode;
  /** Whether the same operation may succeed if tried again later. */
  readonly retryable: boolean;
  /** Machine-readable facts about the failure. */
  readonly context: Readonly<ErrorContext>;
  /** @internal brand shared across copies of the package */
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, options: MocraErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MocraError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.context = Object.freeze({ ...(options.context ?? {}) });
  }

  /** The field the error concerns (ConfigError), if any. */
  get field(): string | undefined {
    return this.context.field;
  }

  /** The key the error concerns, if any. */
  get key(): string | undefined {
    return this.context.key;
  }

  /** The task the error concerns, if any. */
  get taskId(): string | undefined {
    return this.context.taskId;
  }

  /** How long to wait before trying again, if known. */
  get retryAfterMs(): number | undefined {
    return this.context.retryAfterMs;
  }
}

/** Options or arguments are invalid. Code `CONFIG_INVALID`; never retryable. */
export class ConfigError extends MocraError {
  constructor(message: string, options: MocraErrorOptions = {}) {
    super(ErrorCode.CONFIG_INVALID, message, { ...options, retryable: false });
    this.name = 'ConfigError';
  }
}

/** A bounded queue refused an item because it is full. Code `QUEUE_FULL`; retryable. */
export class QueueFullError extends MocraError {
  constructor(message = 'queue is full', options: MocraErrorOptions = {}) {
    super(ErrorCode.QUEUE_FULL, message, { retryable: true, ...options });
    this.name = 'QueueFullError';
  }
}

/** A task or wait was cancelled. Code `TASK_CANCELLED`; never retryable. */
export class TaskCancelledError extends MocraError {
  constructor(message = 'task was cancelled', options: MocraErrorOptions = {}) {
    super(ErrorCode.TASK_CANCELLED, message, { ...options, retryable: false });
    this.name = 'TaskCancelledError';
  }
}

/** A task exceeded its timeout and its signal was aborted. Code `TASK_TIMEOUT`; retryable. */
export class TaskTimeoutError extends MocraError {
  constructor(message = 'task timed out', options: MocraErrorOptions = {}) {
    super(ErrorCode.TASK_TIMEOUT, message, { retryable: true, ...options });
    this.name = 'TaskTimeoutError';
  }
}

/**
 * A component was used after it was closed: a closed store, a shut-down scheduler, a push to a
 * closed queue. Code `CLOSED`; never retryable.
 */
export class ClosedError extends MocraError {
  constructor(message = 'closed', options: MocraErrorOptions = {}) {
    super(ErrorCode.CLOSED, message, { ...options, retryable: false });
    this.name = 'ClosedError';
  }
}

/** The scheduler was shut down. A {@link ClosedError}: code `CLOSED`; never retryable. */
export class SchedulerClosedError extends ClosedError {
  constructor(message = 'scheduler is shut down', options: MocraErrorOptions = {}) {
    super(message, options);
    this.name = 'SchedulerClosedError';
  }
}

/** The backing store cannot be reached. Code `BACKEND_UNAVAILABLE`; retryable. */
export class BackendUnavailableError extends MocraError {
  constructor(message = 'backend is unavailable', options: MocraErrorOptions = {}) {
    super(ErrorCode.BACKEND_UNAVAILABLE, message, { retryable: true, ...options });
    this.name = 'BackendUnavailableError';
  }
}

/**
 * Redis refused a write because it reached `maxmemory`. Code `BACKEND_OUT_OF_MEMORY`; retryable
 * (memory may be freed by expiry or eviction), but worth an alert of its own.
 */
export class BackendOutOfMemoryError extends MocraError {
  constructor(message = 'backend is out of memory', options: MocraErrorOptions = {}) {
    super(ErrorCode.BACKEND_OUT_OF_MEMORY, message, { retryable: true, ...options });
    this.name = 'BackendOutOfMemoryError';
  }
}

/** A Redis script failed or returned an unexpected shape. Code `SCRIPT_FAILED`. */
export class ScriptError extends MocraError {
  constructor(message: string, options: MocraErrorOptions = {}) {
    super(ErrorCode.SCRIPT_FAILED, message, options);
    this.name = 'ScriptError';
  }
}

/**
 * A store command failed the way Redis would refuse it: `WRONG_TYPE` (command against a key
 * holding another kind of value) or `NOT_AN_INTEGER` (INCR on a non-integer, or overflow).
 * Both backends throw the same codes. Any other refusal of a Redis command is
 * `STORE_COMMAND_FAILED`.
 */
export class StoreCommandError extends MocraError {
  constructor(
    code:
      | typeof ErrorCode.WRONG_TYPE
      | typeof ErrorCode.NOT_AN_INTEGER
      | typeof ErrorCode.STORE_COMMAND_FAILED,
    message: string,
    options: MocraErrorOptions = {},
  ) {
    super(code, message, { ...options, retryable: false });
    this.name = 'StoreCommandError';
  }
}

/** A rate-limited wait would exceed the caller's `maxWaitMs`. Code `RATE_LIMITED`; retryable. */
export class RateLimitedError extends MocraError {
  constructor(message = 'rate limit wait exceeds maxWaitMs', options: MocraErrorOptions = {}) {
    super(ErrorCode.RATE_LIMITED, message, { retryable: true, ...options });
    this.name = 'RateLimitedError';
  }
}

/** A queue message is malformed. Code `MESSAGE_INVALID`; never retryable. */
export class MessageInvalidError extends MocraError {
  constructor(message: string, options: MocraErrorOptions = {}) {
    super(ErrorCode.MESSAGE_INVALID, message, { ...options, retryable: false });
    this.name = 'MessageInvalidError';
  }
}

/** No run has the id asked for. Code `RUN_NOT_FOUND`; never retryable. */
export class RunNotFoundError extends MocraError {
  constructor(message: string, options: MocraErrorOptions = {}) {
    super(ErrorCode.RUN_NOT_FOUND, message, { ...options, retryable: false });
    this.name = 'RunNotFoundError';
  }
}

/**
 * A step's parse routed an input it may not (the message names the field, e.g. `route[2].step`).
 * Code `ROUTE_INVALID`; never retryable.
 */
export class RouteError extends MocraError {
  constructor(message: string, options: MocraErrorOptions = {}) {
    super(ErrorCode.ROUTE_INVALID, message, { ...options, retryable: false });
    this.name = 'RouteError';
  }
}

/**
 * A download failed: the server answered with a failing status, or the request could not
 * complete. Code `DOWNLOAD_FAILED`; retryable for 408, 429 and 5xx (and transport failures),
 * with `retryAfterMs` taken from a `Retry-After` header.
 */
export class DownloadError extends MocraError {
  /** The HTTP status, or 0 when no response arrived. */
  readonly status: number;

  constructor(message: string, status: number, options: MocraErrorOptions = {}) {
    super(ErrorCode.DOWNLOAD_FAILED, message, {
      retryable: status === 0 || isRetryableStatus(status),
      ...options,
    });
    this.name = 'DownloadError';
    this.status = status;
  }
}

/**
 * Whether `value` is an error thrown by mocra (any copy of the package), optionally with a
 * given code.
 *
 * @example
 * ```ts
 * if (isMocraError(err, 'QUEUE_FULL')) return reply(503);
 * ```
 */
export function isMocraError<C extends ErrorCode>(
  value: unknown,
  code?: C,
): value is MocraError & {
  /** The code that was asked for. */
  readonly code: C;
} {
  if (typeof value !== 'object' || value === null) return false;
  if ((value as { [BRAND]?: unknown })[BRAND] !== true) return false;
  return code === undefined || (value as { code?: unknown }).code === code;
}

/** Whether `value` is a {@link ConfigError} (code `CONFIG_INVALID`) from any copy of mocra. */
export function isConfigError(value: unknown): value is ConfigError {
  return isMocraError(value, ErrorCode.CONFIG_INVALID);
}

/** Whether `value` is a {@link QueueFullError} (code `QUEUE_FULL`) from any copy of mocra. */
export function isQueueFullError(value: unknown): value is QueueFullError {
  return isMocraError(value, ErrorCode.QUEUE_FULL);
}

/** Whether `value` is a {@link TaskCancelledError} (code `TASK_CANCELLED`) from any copy of mocra. */
export function isTaskCancelledError(value: unknown): value is TaskCancelledError {
  return isMocraError(value, ErrorCode.TASK_CANCELLED);
}

/** Whether `value` is a {@link TaskTimeoutError} (code `TASK_TIMEOUT`) from any copy of mocra. */
export function isTaskTimeoutError(value: unknown): value is TaskTimeoutError {
  return isMocraError(value, ErrorCode.TASK_TIMEOUT);
}

/** Whether `value` is a {@link ClosedError} (code `CLOSED`) from any copy of mocra. */
export function isClosedError(value: unknown): value is ClosedError {
  return isMocraError(value, ErrorCode.CLOSED);
}

/** Whether `value` is a {@link BackendUnavailableError} (code `BACKEND_UNAVAILABLE`) from any copy of mocra. */
export function isBackendUnavailableError(value: unknown): value is BackendUnavailableError {
  return isMocraError(value, ErrorCode.BACKEND_UNAVAILABLE);
}
