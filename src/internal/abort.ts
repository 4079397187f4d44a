/**
 * AbortSignal helpers shared by every primitive.
 * @internal
 */
import { TaskCancelledError } from '../errors.js';
import { unrefTimeout } from './clock.js';

/**
 * The error to reject with when `signal` is aborted: the caller's reason when it is an Error,
 * else a TaskCancelledError carrying the reason as `cause`.
 */
export function abortError(signal: AbortSignal, message = 'operation was aborted'): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name !== 'AbortError') return reason;
  return new TaskCancelledError(message, { cause: reason });
}

/** Throws {@link abortError} if `signal` is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, message?: string): void {
  if (signal?.aborted) throw abortError(signal, message);
}

/** The options of a one-shot listener (one object for every call). */
const ONCE: AddEventListenerOptions = Object.freeze({ once: true });

/**
 * Calls `listener` once when `signal` aborts. Returns a disposer that removes the listener;
 * always call it when the operation ends so long-lived signals do not accumulate listeners.
 */
export function onAbort(signal: AbortSignal | undefined, listener: () => void): () => void {
  if (!signal) return noop;
  if (signal.aborted) {
    listener();
    return noop;
  }
  signal.addEventListener('abort', listener, ONCE);
  return () => signal.removeEventListener('abort', listener);
}

/** Waits `ms` milliseconds (unref'd timer); rejects promptly with {@link abortError} on abort. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    let dispose = noop;
    const timer = unrefTimeout(() => {
      dispose();
      resolve();
    }, ms);
    dispose = onAbort(signal, () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    });
  });
}

function noop(): void {}
