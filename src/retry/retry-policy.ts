/**
 * RetryPolicy: exponential backoff with jitter on cockatiel 3, a retry classifier, Retry-After
 * hints, prompt abort, stats and events.
 */
import {
  DelegateBackoff,
  handleWhen,
  TaskCancelledError as CockatielTaskCancelledError,
  retry,
  type IPolicy,
  type IRetryBackoffContext,
} from 'cockatiel';
import { TaskTimeoutError } from '../errors.js';
import { abortError, onAbort } from '../internal/abort.js';
import { MAX_TIMER_DELAY_MS } from '../internal/clock.js';
import { Emitter } from '../internal/emitter.js';
import {
  invalid,
  invalidCombination,
  optionalEnum,
  optionalFunction,
  optionalNumber,
  readOptions,
  requireFunction,
  optionalSignal,
  requireNumber,
} from '../internal/validate.js';
import { backoffDelay } from './backoff.js';
import { isRetryableError } from './classify.js';

/** How a delay is randomised. */
export type JitterKind = 'proportional' | 'full' | 'half' | 'decorrelated' | 'none';

/** Options of {@link RetryPolicy}. */
export interface RetryPolicyOptions {
  /** Retries after the first call (integer >= 0): 3 means at most 4 calls. @defaultValue 3 */
  maxRetries?: number;
  /** Delay before the first retry, in ms. @defaultValue 100 */
  initialDelayMs?: number;
  /** Largest delay before jitter, in ms (>= initialDelayMs, < 2^31). @defaultValue 30000 */
  maxDelayMs?: number;
  /** Growth of the delay per retry (>= 1). @defaultValue 2 */
  multiplier?: number;
  /** Proportional jitter in [0, 1): each delay is scaled by a random factor in [1 - jitter, 1 + jitter], after the cap. @defaultValue 0.2 */
  jitter?: number;
  /**
   * Kind of jitter: `'proportional'` (± `jitter`), cockatiel's `'full'` (0..delay), `'half'`
   * (delay/2..delay), `'decorrelated'`, or `'none'`. @defaultValue 'proportional'
   */
  jitterKind?: JitterKind;
  /** Which errors to retry. @defaultValue {@link isRetryableError} */
  isRetryable?: (error: unknown) => boolean;
  /** Longest wait honoured from an error's `retryAfterMs` hint, in ms. @defaultValue 60000 */
  maxRetryAfterMs?: number;
  /** A cockatiel policy each attempt runs through (e.g. a circuit breaker, timeout or bulkhead). */
  policy?: IPolicy;
}

/** Counters of a {@link RetryPolicy}. */
export interface RetryStats {
  /** Calls of the function (first calls and retries). */
  attempts: number;
  /** Retries scheduled. */
  retries: number;
  /** Executions that ended with a value. */
  successes: number;
  /** Executions that ended with an error (not retryable, or out of retries). */
  giveUps: number;
  /** Executions stopped by their signal. */
  aborted: number;
}

/** Events of a {@link RetryPolicy}. */
export interface RetryEvents {
  /** A retry was scheduled. */
  retry: {
    /** The attempt that failed (1 = the first call). */
    attempt: number;
    /** Wait before the next attempt, in ms. */
    delayMs: number;
    /** The error of the failed attempt. */
    error: unknown;
  };
  /** An execution ended with an error. */
  giveUp: {
    /** Calls made. */
    attempts: number;
    /** The last error. */
    error: unknown;
  };
  /** An execution ended with a value. */
  success: {
    /** Calls made. */
    attempts: number;
  };
}

/** What the function given to {@link RetryPolicy.execute} receives. */
export interface RetryContext {
  /** 1 for the first call, 2 for the first retry, … */
  attempt: number;
  /** Aborted when the caller's signal aborts (or the wrapped policy's, e.g. a timeout). */
  signal: AbortSignal;
}

interface Resolved {
  maxRetries: number;
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  jitter: number;
  jitterKind: JitterKind;
  isRetryable: (error: unknown) => boolean;
  maxRetryAfterMs: number;
  policy: IPolicy | undefined;
}

const W = 'RetryPolicy';
const never = new AbortController().signal;

/**
 * Retries a function with exponential backoff and jitter, on cockatiel.
 *
 * Delays: `min(initialDelayMs × multiplier^(n-1), maxDelayMs)` for retry n, then jitter, then
 * at least the error's `retryAfterMs` hint (capped by `maxRetryAfterMs`), always below 2^31 ms.
 * When the caller's signal aborts, `execute` rejects at once with the signal's reason and the
 * function is not called again.
 *
 * @example
 * ```ts
 * const policy = new RetryPolicy({ maxRetries: 5, initialDelayMs: 200 });
 * const body = await policy.execute(({ signal }) => fetchJson(url, { signal }), { signal });
 * ```
 */
export class RetryPolicy {
  readonly #o: Resolved;
  readonly #emitter = new Emitter<RetryEvents>();
  readonly #stats: RetryStats = { attempts: 0, retries: 0, successes: 0, giveUps: 0, aborted: 0 };

  /** @throws {@link ConfigError} naming an invalid option. */
  constructor(options: RetryPolicyOptions = {}) {
    const o = readOptions(W, options, [
      'maxRetries',
      'initialDelayMs',
      'maxDelayMs',
      'multiplier',
      'jitter',
      'jitterKind',
      'isRetryable',
      'maxRetryAfterMs',
      'policy',
    ]);
    const maxDelayMs = optionalNumber(W, 'maxDelayMs', o.maxDelayMs, 30_000, {
      min: 0,
      max: MAX_TIMER_DELAY_MS,
    });
    const initialDelayMs = optionalNumber(W, 'initialDelayMs', o.initialDelayMs, 100, {
      min: 0,
      max: MAX_TIMER_DELAY_MS,
    });
    if (maxDelayMs < initialDelayMs) {
      invalidCombination(
        W,
        ['maxDelayMs', 'initialDelayMs'],
        `\`maxDelayMs\` (${maxDelayMs}) must be >= \`initialDelayMs\` (${initialDelayMs})`,
      );
    }
    if (
      o.policy !== undefined &&
      (o.policy === null || typeof (o.policy as IPolicy).execute !== 'function')
    ) {
      invalid(W, 'policy', 'a cockatiel policy (with execute)', o.policy);
    }
    this.#o = Object.freeze({
      maxRetries: optionalNumber(W, 'maxRetries', o.maxRetries, 3, {
        integer: true,
        min: 0,
        max: 1000,
      }),
      initialDelayMs,
      maxDelayMs,
      multiplier: optionalNumber(W, 'multiplier', o.multiplier, 2, { min: 1 }),
      jitter: optionalNumber(W, 'jitter', o.jitter, 0.2, { min: 0, lessThan: 1 }),
      jitterKind: optionalEnum(
        W,
        'jitterKind',
        o.jitterKind,
        ['proportional', 'full', 'half', 'decorrelated', 'none'],
        'proportional',
      ),
      isRetryable:
        optionalFunction<(e: unknown) => boolean>(W, 'isRetryable', o.isRetryable) ??
        isRetryableError,
      maxRetryAfterMs: optionalNumber(W, 'maxRetryAfterMs', o.maxRetryAfterMs, 60_000, {
        min: 0,
        max: MAX_TIMER_DELAY_MS,
      }),
      policy: o.policy,
    });
  }

  /**
   * The delay before retry `n` (1-based) after `error`, as `execute` computes it.
   * `previousMs` feeds decorrelated jitter.
   */
  delayFor(n: number, error?: unknown, previousMs?: number): number {
    requireNumber('RetryPolicy.delayFor', 'n', n, { integer: true, min: 1 });
    if (previousMs !== undefined)
      requireNumber('RetryPolicy.delayFor', 'previousMs', previousMs, { min: 0 });
    return backoffDelay(this.#o, n, error, previousMs);
  }

  /**
   * Calls `fn` until it succeeds, an error is not retryable, retries run out, or `signal` aborts.
   *
   * @throws the last error of `fn`; the signal's reason (or TaskCancelledError) on abort.
   */
  execute<T>(
    fn: (ctx: RetryContext) => Promise<T> | T,
    options: { signal?: AbortSignal } = {},
  ): Promise<T> {
    let signal: AbortSignal;
    try {
      requireFunction(`${W}.execute`, 'fn', fn);
      signal = optionalSignal(`${W}.execute`, 'signal', options?.signal) ?? never;
    } catch (error) {
      return Promise.reject(error);
    }
    return this._run(fn, signal);
  }

  /**
   * {@link RetryPolicy.execute} without the checks of its arguments, for callers inside mocra
   * that pass a function and an AbortSignal they made themselves.
   * @internal
   */
  _run<T>(fn: (ctx: RetryContext) => Promise<T> | T, signal: AbortSignal): Promise<T> {
    if (signal.aborted) {
      this.#stats.aborted++;
      return Promise.reject(abortError(signal));
    }
    // without a wrapped policy the loop is ours: no cockatiel policy is built per call
    return this.#o.policy ? this.#wrapped(fn, signal) : this.#first(fn, signal);
  }

  /**
   * The first call of `fn`, without a loop: one promise and (with a signal, while `fn` runs)
   * one abort listener. A failure goes on in {@link RetryPolicy.#loop}.
   */
  #first<T>(fn: (ctx: RetryContext) => Promise<T> | T, signal: AbortSignal): Promise<T> {
    this.#stats.attempts++;
    let value: Promise<T> | T;
    try {
      value = fn({ attempt: 1, signal });
    } catch (error) {
      return this.#loop(fn, signal, error);
    }
    if (typeof (value as PromiseLike<T> | null)?.then !== 'function') {
      this.#succeeded(1);
      return Promise.resolve(value);
    }
    return new Promise<T>((resolve, reject) => {
      // rejects at once when the caller aborts, even while `fn` ignores its signal
      let done = false;
      const removeAbort =
        signal === never
          ? noop
          : onAbort(signal, () => {
              done = true;
              this.#stats.aborted++;
              reject(abortError(signal));
            });
      (value as PromiseLike<T>).then(
        (result) => {
          removeAbort();
          if (done) return;
          this.#succeeded(1);
          resolve(result);
        },
        (error: unknown) => {
          removeAbort();
          if (!done) resolve(this.#loop(fn, signal, error));
        },
      );
    });
  }

  #succeeded(attempts: number): void {
    this.#stats.successes++;
    if (this.#emitter.has('success')) this.#emitter.emit('success', { attempts });
  }

  /**
   * Goes on after the first call of `fn` failed with `firstFailure`, until it succeeds or gives
   * up: the backoff of {@link RetryPolicy.delayFor}.
   */
  async #loop<T>(
    fn: (ctx: RetryContext) => Promise<T> | T,
    signal: AbortSignal,
    firstFailure: unknown,
  ): Promise<T> {
    const o = this.#o;
    // rejects at once when the caller aborts, even while `fn` ignores its signal
    let removeAbort = noop;
    let aborted: Promise<never> | undefined;
    const settle = (value: Promise<T> | T): Promise<T> | T => {
      if (signal === never || typeof (value as PromiseLike<T> | null)?.then !== 'function')
        return value;
      if (aborted === undefined) {
        aborted = new Promise<never>((_, reject) => {
          removeAbort = onAbort(signal, () => reject(abortError(signal)));
        });
        aborted.catch(noop); // it may reject while no attempt runs (during a backoff)
      }
      return Promise.race([value, aborted]);
    };
    let attempts = 1;
    let previous: number | undefined;
    let failure: unknown = firstFailure;
    try {
      for (;;) {
        if (signal.aborted) {
          this.#stats.aborted++;
          throw abortError(signal);
        }
        if (attempts > o.maxRetries || !o.isRetryable(failure)) {
          this.#stats.giveUps++;
          if (this.#emitter.has('giveUp'))
            this.#emitter.emit('giveUp', { attempts, error: failure });
          throw failure;
        }
        const delayMs = this.delayFor(attempts, failure, previous);
        previous = delayMs;
        this.#stats.retries++;
        if (this.#emitter.has('retry'))
          this.#emitter.emit('retry', { attempt: attempts, delayMs, error: failure });
        try {
          await wait(delayMs, signal);
        } catch {
          this.#stats.aborted++;
          throw abortError(signal);
        }
        // aborted as the backoff ended: the function is not called again
        if (signal.aborted) {
          this.#stats.aborted++;
          throw abortError(signal);
        }
        attempts++;
        this.#stats.attempts++;
        try {
          const value = await settle(fn({ attempt: attempts, signal }));
          this.#succeeded(attempts);
          return value;
        } catch (error) {
          failure = error;
        }
      }
    } finally {
      removeAbort();
    }
  }

  /** {@link RetryPolicy.execute} through cockatiel, each attempt run by the wrapped policy. */
  async #wrapped<T>(fn: (ctx: RetryContext) => Promise<T> | T, signal: AbortSignal): Promise<T> {
    const o = this.#o;
    const wrapped = o.policy!;
    let attempts = 0;
    let lastError: unknown;
    const classify = (error: unknown): boolean => !signal.aborted && o.isRetryable(error);
    const policy = retry(handleWhen(classify), {
      maxAttempts: o.maxRetries,
      backoff: new DelegateBackoff<IRetryBackoffContext<unknown>, number | undefined>(
        (ctx, previous) => {
          const error = 'error' in ctx.result ? ctx.result.error : undefined;
          const delayMs = this.delayFor(ctx.attempt, error, previous);
          return { delay: delayMs, state: delayMs };
        },
      ),
    }).dangerouslyUnref();
    // cockatiel's backoff timer is unref'd (it cannot be cancelled, and must not hold the process
    // after an abort); while the caller waits out a backoff, this ref'd twin keeps it alive
    let keepAlive: ReturnType<typeof setTimeout> | undefined;
    const release = (): void => {
      if (keepAlive !== undefined) clearTimeout(keepAlive);
      keepAlive = undefined;
    };
    const onRetry = policy.onRetry((event) => {
      release();
      if (!signal.aborted)
        keepAlive = setTimeout(noop, Math.min(event.delay + 1, MAX_TIMER_DELAY_MS));
      this.#stats.retries++;
      if (this.#emitter.has('retry')) {
        const error = 'error' in event ? event.error : undefined;
        this.#emitter.emit('retry', { attempt: attempts, delayMs: event.delay, error });
      }
    });
    const attempt = async ({ signal: inner }: { signal: AbortSignal }): Promise<T> => {
      release();
      // after an abort, cockatiel may still wake from its backoff wait: never call fn again
      if (signal.aborted) throw abortError(signal);
      attempts++;
      this.#stats.attempts++;
      let attemptSignal: AbortSignal = inner;
      try {
        return (await wrapped.execute(({ signal: s }) => {
          attemptSignal = s;
          return fn({ attempt: attempts, signal: s });
        }, inner)) as T;
      } catch (error) {
        // a wrapped cockatiel timeout cancels the attempt: when the caller did not abort, that
        // is a timeout (retryable), not a cancellation
        const cutByPolicy =
          !signal.aborted &&
          (attemptSignal.aborted || error instanceof CockatielTaskCancelledError);
        const e = cutByPolicy
          ? new TaskTimeoutError('attempt timed out in the wrapped policy', { cause: error })
          : error;
        lastError = e;
        throw e;
      }
    };
    const running = policy.execute(attempt, signal);
    let removeAbort = (): void => {};
    const aborted = new Promise<never>((_, reject) => {
      const onAbort = (): void => reject(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      removeAbort = () => signal.removeEventListener('abort', onAbort);
    });
    aborted.catch(() => {});
    try {
      const value = await Promise.race([running, aborted]);
      this.#stats.successes++;
      if (this.#emitter.has('success')) this.#emitter.emit('success', { attempts });
      return value;
    } catch (error) {
      if (signal.aborted) {
        running.catch(() => {});
        this.#stats.aborted++;
        throw abortError(signal);
      }
      this.#stats.giveUps++;
      if (this.#emitter.has('giveUp'))
        this.#emitter.emit('giveUp', { attempts, error: lastError ?? error });
      throw error;
    } finally {
      release();
      removeAbort();
      onRetry.dispose();
    }
  }

  /** Counters since construction. */
  stats(): RetryStats {
    return { ...this.#stats };
  }

  /** Subscribes to `retry`, `giveUp` or `success`; returns an unsubscribe function. */
  on<K extends keyof RetryEvents>(
    event: K,
    listener: (payload: RetryEvents[K]) => void,
  ): () => void {
    return this.#emitter.on(event, listener);
  }
}

function noop(): void {}

/** Waits `ms` on a ref'd timer (a backoff keeps the process alive); rejects when `signal` aborts. */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let dispose = noop;
    const timer = setTimeout(() => {
      dispose();
      resolve();
    }, ms);
    dispose = onAbort(signal, () => {
      clearTimeout(timer);
      reject(abortError(signal));
    });
  });
}
