/**
 * The default retry classifier.
 */
import {
  TaskCancelledError as CockatielTaskCancelledError,
  isBrokenCircuitError,
  isBulkheadRejectedError,
  isIsolatedCircuitError,
} from 'cockatiel';
import { isMocraError } from '../errors.js';
import { isRetryableStatus } from './status.js';

export { isRetryableStatus } from './status.js';

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ESOCKETTIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/**
 * Whether an error is worth retrying, by default:
 *
 * - never: mocra errors that are not `retryable` (ConfigError, TaskCancelledError, …), cockatiel's
 *   BrokenCircuitError / IsolatedCircuitError / BulkheadRejectedError / TaskCancelledError,
 *   `AbortError`s, errors with `retryable: false`, HTTP-like 4xx other than 408 and 429;
 * - always: mocra errors that are `retryable` (timeouts, BackendUnavailableError, …), errors
 *   with `retryable: true`, HTTP-like 408, 429 and 5xx (`status` or `statusCode`), network
 *   errors (`ECONNRESET`, `ETIMEDOUT`, undici socket errors, … also found on `cause`),
 *   `TimeoutError`s;
 * - anything else: no (a programming error does not get better by trying again).
 *
 * @example
 * ```ts
 * new RetryPolicy({ isRetryable: (e) => isRetryableError(e) || e instanceof MyFlakyError });
 * ```
 */
export function isRetryableError(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object') return false;
  if (isMocraError(error)) return error.retryable;
  if (
    isBrokenCircuitError(error) ||
    isIsolatedCircuitError(error) ||
    isBulkheadRejectedError(error) ||
    // cockatiel 3's isTaskCancelledError() tests the bulkhead flag, so test the class itself
    error instanceof CockatielTaskCancelledError
  ) {
    return false;
  }
  const e = error as {
    name?: unknown;
    retryable?: unknown;
    status?: unknown;
    statusCode?: unknown;
    code?: unknown;
    cause?: unknown;
  };
  if (e.name === 'AbortError') return false;
  if (typeof e.retryable === 'boolean') return e.retryable;
  const status =
    typeof e.status === 'number'
      ? e.status
      : typeof e.statusCode === 'number'
        ? e.statusCode
        : undefined;
  if (status !== undefined) return isRetryableStatus(status);
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (e.name === 'TimeoutError') return true;
  if (e.cause !== undefined && depth < 3) return isRetryableError(e.cause, depth + 1);
  return false;
}

/** The `retryAfterMs` hint of an error (a number >= 0), if it has one. */
export function retryAfterHint(error: unknown): number | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const hint = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof hint === 'number' && Number.isFinite(hint) && hint >= 0 ? hint : undefined;
}
