/**
 * The consumer side shared by both queues: a `receive()` call waiting for a delivery, which its
 * signal can withdraw.
 * @internal
 */
import { abortError, onAbort } from '../internal/abort.js';
import { optionalNumber, optionalSignal, readOptions } from '../internal/validate.js';
import type { Delivery } from './queue.js';

/** A receiver waiting in a queue's list; `done` once it was served, withdrawn or closed out. */
export interface ReceiveWaiter<T> {
  resolve: (delivery: Delivery<T> | null) => void;
  reject: (error: Error) => void;
  done: boolean;
}

/**
 * Adds a waiter to `waiters` and resolves with what the queue hands it. When `signal` aborts
 * first, the waiter leaves the list and the promise rejects with the signal's reason.
 * `afterAdd` runs once the waiter is in the list (e.g. to start a reader).
 */
export function waitForDelivery<T>(
  waiters: ReceiveWaiter<T>[],
  signal: AbortSignal | undefined,
  afterAdd?: () => void,
): Promise<Delivery<T> | null> {
  return new Promise<Delivery<T> | null>((resolve, reject) => {
    let dispose = (): void => {};
    const waiter: ReceiveWaiter<T> = {
      done: false,
      resolve: (delivery) => {
        dispose();
        resolve(delivery);
      },
      reject: (error) => {
        dispose();
        reject(error);
      },
    };
    dispose = onAbort(signal, () => {
      if (waiter.done) return;
      waiter.done = true;
      const index = waiters.indexOf(waiter);
      if (index >= 0) waiters.splice(index, 1);
      waiter.reject(abortError(signal!));
    });
    waiters.push(waiter);
    afterAdd?.();
  });
}

/** Ends every waiter of `waiters` with null (the queue closed and is drained). */
export function closeWaiters<T>(waiters: ReceiveWaiter<T>[]): void {
  for (const waiter of waiters.splice(0)) {
    waiter.done = true;
    waiter.resolve(null);
  }
}

/** The `signal` of `receive(options)`, checked (ConfigError naming the field). */
export function receiveSignal(where: string, options: unknown): AbortSignal | undefined {
  const o = readOptions<{ signal?: unknown }>(`${where}.receive`, options as object, ['signal']);
  return optionalSignal(`${where}.receive`, 'signal', o.signal);
}

/** The options of `push(message, options)`, checked (ConfigError naming the field). */
export function readPushOptions(
  where: string,
  options: unknown,
): { signal: AbortSignal | undefined; maxWaitMs: number } {
  const o = readOptions<{ signal?: unknown; maxWaitMs?: unknown }>(
    `${where}.push`,
    options as object,
    ['signal', 'maxWaitMs'],
  );
  return {
    signal: optionalSignal(`${where}.push`, 'signal', o.signal),
    maxWaitMs: optionalNumber(`${where}.push`, 'maxWaitMs', o.maxWaitMs, Infinity, {
      min: 0,
      allowInfinity: true,
    }),
  };
}
