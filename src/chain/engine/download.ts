/**
 * The default downloader and the download path of the engine: per-module concurrency cap, the
 * engine-wide download scheduler, the rate limiter (per module), and the retry policy for
 * transient failures. All four are mocra primitives; nothing here re-implements them.
 */
import { setMaxListeners } from 'node:events';
import { ConfigError, DownloadError, isMocraError } from '../../errors.js';
import { describeValue, invalid } from '../../internal/validate.js';
import type { Metrics } from '../../observe/metrics.js';
import { RateLimiter } from '../../rate-limit/index.js';
import { RetryPolicy, type RetryContext } from '../../retry/index.js';
import { isRetryableStatus } from '../../retry/status.js';
import { createScheduler, type TaskScheduler } from '../../scheduler/index.js';
import type { DownloadResult, ModuleDefinition } from '../module.js';
import { DownloadAttempt } from './download-attempt.js';
import type { Downloader } from './types.js';

/**
 * Parses a Retry-After header (seconds or an HTTP date) into ms, if present and sane. A missing
 * header (`undefined` or `null`, as `Headers.get` gives) is `undefined`.
 *
 * @throws {@link ConfigError} when `value` is neither a string nor missing.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now = Date.now(),
): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') invalid('parseRetryAfter', 'value', 'a string', value);
  if (value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * The default {@link Downloader}: `fetch` with the request's method, headers and body; returns
 * the status, the headers with lower-case names (copied from the response when first read) and
 * the body as text.
 *
 * @example
 * ```ts
 * const engine = createChainEngine({ modules, downloader: fetchDownloader });
 * ```
 */
export const fetchDownloader: Downloader = async (request, { signal }) => {
  let response: Response;
  try {
    // GET is fetch's own default: a request without a method skips its normalisation
    const init: RequestInit =
      request.method === 'GET' ? { signal } : { method: request.method, signal };
    if (request.headers !== undefined) init.headers = request.headers;
    if (request.body !== undefined) init.body = request.body;
    response = await fetch(request.url, init);
  } catch (error) {
    if (signal.aborted) throw error;
    throw new DownloadError(
      `${request.method} ${request.url} failed: ${(error as Error).message}`,
      0,
      {
        cause: error,
      },
    );
  }
  const body = await response.text();
  // the headers are copied when first read (most parses never read them); an own property all
  // the same, so spreading or serialising the result keeps them
  let headers: Record<string, string> | undefined;
  return {
    status: response.status,
    body,
    get headers(): Record<string, string> {
      return (headers ??= readHeaders(response.headers));
    },
    set headers(value: Record<string, string>) {
      headers = value;
    },
  };
};

/** The headers of a response as a plain object, with lower-case names. */
function readHeaders(source: Headers): Record<string, string> {
  const headers: Record<string, string> = {};
  source.forEach((value, name) => {
    headers[name.toLowerCase()] = value;
  });
  return headers;
}

/** @internal */
export interface DownloadPathOptions {
  downloader: Downloader;
  limiter: RateLimiter;
  retry: RetryPolicy;
  /** Downloads in flight at once, over all modules. */
  concurrency: number;
  /** Where the download schedulers report (queue depth, waits). */
  metrics: Metrics | undefined;
  timeoutMs: number;
  onTry: (moduleId: string) => void;
}

/**
 * Runs downloads for every module of one engine.
 * @internal
 */
export class DownloadPath {
  readonly #o: DownloadPathOptions;
  readonly #downloads: TaskScheduler;
  readonly #perModule = new Map<string, TaskScheduler>();
  /** The limiter's wait for one token of `key` (`undefined`: taken at once). */
  readonly #acquire: (key: string, signal: AbortSignal) => Promise<void> | undefined;
  /** The retry policy's execute. */
  readonly #retry: <T>(fn: (ctx: RetryContext) => Promise<T>, signal: AbortSignal) => Promise<T>;

  constructor(options: DownloadPathOptions) {
    this.#o = options;
    this.#downloads = createScheduler({
      maxConcurrent: options.concurrency,
      queueCapacity: Infinity,
      metrics: options.metrics,
      name: 'chain_download',
    });
    // the engine's own calls skip the checks of their arguments, unless a subclass overrides
    // the public method (then it is the one called)
    const { limiter, retry } = options;
    this.#acquire =
      limiter.acquire === RateLimiter.prototype.acquire
        ? (key, signal) => limiter._acquireOne(key, signal)
        : (key, signal) => limiter.acquire(key, { signal });
    this.#retry =
      retry.execute === RetryPolicy.prototype.execute
        ? (fn, signal) => retry._run(fn, signal)
        : (fn, signal) => retry.execute(fn, { signal });
  }

  /** Downloads `request` for `module`, retrying transient failures; rejects with the last error. */
  download(
    module: ModuleDefinition,
    taskId: string,
    request: Parameters<Downloader>[0],
    signal: AbortSignal,
  ): Promise<DownloadResult> {
    // the node's signal is shared by every download of the node (each attempt and each retry
    // wait listens to it): lift Node's 10-listener warning for it, the listeners are removed as
    // calls end (lifting again is cheaper than remembering the signals lifted)
    setMaxListeners(0, signal);
    const moduleId = module.id;
    if (module.concurrency === undefined) return this.#run(moduleId, taskId, request, signal);
    let capped = this.#perModule.get(moduleId);
    if (!capped) {
      capped = createScheduler({
        maxConcurrent: module.concurrency,
        queueCapacity: Infinity,
        metrics: this.#o.metrics,
        name: `chain_download:${moduleId}`,
      });
      this.#perModule.set(moduleId, capped);
    }
    return capped._runOwn(() => this.#run(moduleId, taskId, request, signal), undefined, signal);
  }

  /**
   * A download in the engine-wide scheduler, its tries run by the retry policy. The retries race
   * the node's signal, so the scheduler watches it only while the download waits.
   */
  #run(
    moduleId: string,
    taskId: string,
    request: Parameters<Downloader>[0],
    signal: AbortSignal,
  ): Promise<DownloadResult> {
    // no key: the engine-wide scheduler caps no key (a key would only name the task in events
    // nobody can subscribe to)
    return this.#downloads._runOwn(
      () => this.#retry((ctx) => this.#try(ctx, moduleId, taskId, request), signal),
      undefined,
      signal,
    );
  }

  /** One try: a token of the module's rate limit, then the downloader, within the timeout. */
  async #try(
    { attempt: n, signal }: RetryContext,
    moduleId: string,
    taskId: string,
    request: Parameters<Downloader>[0],
  ): Promise<DownloadResult> {
    const wait = this.#acquire(moduleId, signal);
    if (wait !== undefined) await wait;
    this.#o.onTry(moduleId);
    // the attempt's context; its one signal (made when read) is aborted by the node's, or when
    // the attempt times out
    const attempt = new DownloadAttempt(signal, this.#o.timeoutMs, moduleId, taskId, n);
    let result: DownloadResult;
    try {
      // bounded by the timeout even when the downloader ignores its signal and never answers
      result = await DownloadAttempt.bound(attempt, this.#o.downloader(request, attempt));
    } catch (error) {
      if (DownloadAttempt.timedOut(attempt) && !signal.aborted) {
        throw new DownloadError(
          `${request.method} ${request.url} timed out after ${this.#o.timeoutMs} ms`,
          0,
          { cause: error },
        );
      }
      throw error;
    } finally {
      DownloadAttempt.done(attempt);
    }
    if (typeof result !== 'object' || result === null || !Number.isInteger(result.status))
      badResult(request, result);
    if (isRetryableStatus(result.status)) {
      const retryAfterMs = parseRetryAfter(result.headers?.['retry-after']);
      throw new DownloadError(
        `${request.method} ${request.url} answered ${result.status}`,
        result.status,
        retryAfterMs === undefined ? {} : { context: { retryAfterMs } },
      );
    }
    return result;
  }

  /** Cancels queued downloads and waits for running ones. */
  async close(): Promise<void> {
    await Promise.all([
      this.#downloads.shutdown({ mode: 'cancel' }),
      ...[...this.#perModule.values()].map((s) => s.shutdown({ mode: 'cancel' })),
    ]);
  }
}

/**
 * A downloader answered something that is not a {@link DownloadResult}: a programming error, not
 * retried (the same answer would come again).
 */
function badResult(request: Parameters<Downloader>[0], result: unknown): never {
  const got =
    typeof result === 'object' && result !== null
      ? `\`status\` ${describeValue((result as { status?: unknown }).status)}`
      : describeValue(result);
  throw new ConfigError(
    `the downloader answered ${request.method} ${request.url} with no integer \`status\` ` +
      `(expected { status, headers, body }), got ${got}`,
    { context: { field: 'downloader' } },
  );
}

/** Whether an error came from an abort rather than from the work itself. */
export function isAbortLike(error: unknown): boolean {
  if (isMocraError(error, 'TASK_CANCELLED')) return true;
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { name?: unknown }).name === 'AbortError'
  );
}
