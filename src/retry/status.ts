/**
 * The one rule for which HTTP statuses are worth retrying: 408 (timeout), 429 (too many
 * requests) and 5xx. The retry classifier, `DownloadError` and the engine's download path all
 * use it. A leaf module (no imports) so that `errors.ts` can use it without loading the retry
 * machinery.
 */

/**
 * Whether an HTTP status is a transient failure worth retrying: 408, 429 and 500–599.
 *
 * @example
 * ```ts
 * isRetryableStatus(503); // true
 * isRetryableStatus(404); // false
 * ```
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}
