/**
 * One download attempt: the context its downloader receives, and the attempt's signal, made
 * only when the downloader reads it.
 * @internal
 */
import { onAbort } from '../../internal/abort.js';
import { MAX_TIMER_DELAY_MS } from '../../internal/clock.js';
import type { DownloadContext } from './types.js';

/** No reason recorded yet (an abort reason is never `undefined`). */
const NONE: unique symbol = Symbol('none');

/**
 * The {@link DownloadContext} of one attempt, and its signal: the signal follows the node's and
 * aborts itself (with a `TimeoutError`, as `AbortSignal.timeout` does) once `timeoutMs` has
 * passed. One timer; the AbortController and its listener on the node's signal are made when
 * the downloader first reads `signal` (a downloader that never reads it costs no AbortSignal).
 * A signal read late is the one it would have been all along: aborted with the reason that came
 * first (the node's abort or the timeout), and no longer following the node once the attempt
 * ended. Released by {@link DownloadAttempt.done}.
 *
 * To the downloader it is a plain context: `signal`, `moduleId`, `taskId` and `attempt` are own
 * enumerable properties (in that order), so a spread or `Object.keys` sees them all, and
 * `signal` can be assigned.
 */
export class DownloadAttempt implements DownloadContext {
  /** The own `signal` property of every attempt (one descriptor, no closure per attempt). */
  static readonly #signal: PropertyDescriptor = {
    get(this: DownloadAttempt): AbortSignal {
      return this.#makeSignal();
    },
    set(this: DownloadAttempt, value: AbortSignal): void {
      Object.defineProperty(this, 'signal', {
        value,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    },
    enumerable: true,
    configurable: true,
  };

  declare signal: AbortSignal;
  declare readonly moduleId: string;
  declare readonly taskId: string;
  declare readonly attempt: number;
  readonly #parent: AbortSignal;
  readonly #timer: ReturnType<typeof setTimeout>;
  #controller: AbortController | undefined;
  #unfollow: (() => void) | undefined;
  /** Before the controller is made: the reason it is to be aborted with, once there is one. */
  #reason: unknown = NONE;
  #done = false;
  #timedOut = false;
  /** Rejects the promise {@link DownloadAttempt.bound} returned, at the timeout. */
  #expire: ((reason: unknown) => void) | undefined;

  constructor(
    parent: AbortSignal,
    timeoutMs: number,
    moduleId: string,
    taskId: string,
    attempt: number,
  ) {
    Object.defineProperty(this, 'signal', DownloadAttempt.#signal);
    (this as { moduleId: string }).moduleId = moduleId;
    (this as { taskId: string }).taskId = taskId;
    (this as { attempt: number }).attempt = attempt;
    this.#parent = parent;
    this.#timer = setTimeout(() => this.#timeout(), Math.min(timeoutMs, MAX_TIMER_DELAY_MS));
    this.#timer.unref();
  }

  /** The attempt ended: no timeout, no listener left on the node's signal. */
  static done(attempt: DownloadAttempt): void {
    attempt.#end();
  }

  /**
   * The downloader's answer, bounded by the attempt's timeout: settles as `pending` does, or
   * rejects with the timeout's `TimeoutError` once `timeoutMs` has passed first. A downloader
   * that ignores its signal and never answers is no longer waited for (it is left running):
   * its try fails as a timeout, like one that honours the signal.
   */
  static bound<T>(attempt: DownloadAttempt, pending: T | PromiseLike<T>): T | Promise<T> {
    if (!isThenable(pending)) return pending; // answered at once
    return new Promise<T>((resolve, reject) => {
      attempt.#expire = reject;
      // not resolve(pending): a promise resolved with a thenable ignores a later reject
      pending.then(resolve, reject);
    });
  }

  /** Whether `attempt` timed out (its signal, if read, aborted with a TimeoutError). */
  static timedOut(attempt: DownloadAttempt): boolean {
    return attempt.#timedOut;
  }

  #makeSignal(): AbortSignal {
    let controller = this.#controller;
    if (controller === undefined) {
      const made = new AbortController();
      controller = this.#controller = made;
      const parent = this.#parent;
      if (this.#reason !== NONE) made.abort(this.#reason);
      else if (parent.aborted) made.abort(parent.reason);
      else if (!this.#done) this.#unfollow = onAbort(parent, () => made.abort(parent.reason));
    }
    return controller.signal;
  }

  #end(): void {
    clearTimeout(this.#timer);
    this.#expire = undefined;
    if (this.#unfollow !== undefined) this.#unfollow();
    else if (this.#controller === undefined && this.#reason === NONE && this.#parent.aborted)
      this.#reason = this.#parent.reason; // the node aborted while the attempt ran
    this.#done = true;
  }

  #timeout(): void {
    this.#timedOut = true;
    const reason = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    const expire = this.#expire;
    if (expire !== undefined) expire(reason);
    if (this.#controller !== undefined) this.#controller.abort(reason);
    else if (this.#reason === NONE)
      this.#reason = this.#parent.aborted ? this.#parent.reason : reason;
  }
}

/** Whether `value` is a promise or another thenable. */
function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
