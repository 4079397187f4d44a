/**
 * What both queues share: a `receive()` call waiting for a delivery (which its signal can
 * withdraw), a producer waiting in a queue's list for room, the argument checks of `push` and
 * `receive`, a delivery's settle guard, and a producer polling for room.
 * @internal
 */
import { ClosedError, QueueFullError } from '../errors.js';
import { abortError, onAbort, sleep } from '../internal/abort.js';
import { unrefTimeout } from '../internal/clock.js';
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

/** A producer waiting in a queue's list for room; `done` once it was served or gave up. */
export interface RoomWaiter {
  resolve: () => void;
  reject: (error: Error) => void;
  done: boolean;
}

/** Where {@link waitForRoom} waits. */
export interface RoomWait {
  /** The queue's name (for the error messages). */
  queue: string;
  /** Longest wait; Infinity waits until there is room, the signal aborts or the queue closes. */
  maxWaitMs: number;
  signal: AbortSignal | undefined;
  /** Counts a back-pressure outcome (`full_refused`, `full_wait`, `full_timeout`, `aborted`). */
  count: (reason: string) => void;
}

/**
 * A producer's wait for room in a full queue: rejects at once when `signal` has aborted, or with
 * QueueFullError when `maxWaitMs` is 0 (counted `full_refused`). Otherwise (counted `full_wait`)
 * adds a producer waiter (`fields` plus the waiter's own) to `producers` and resolves when the
 * queue serves it. After `maxWaitMs` it leaves the list and rejects with QueueFullError; when
 * `signal` aborts first, with the signal's reason.
 */
export function waitForRoom<W extends RoomWaiter>(
  producers: W[],
  fields: Omit<W, keyof RoomWaiter>,
  wait: RoomWait,
): Promise<void> {
  const { queue, maxWaitMs, signal } = wait;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (maxWaitMs <= 0) {
    wait.count('full_refused');
    return Promise.reject(
      new QueueFullError(`queue ${queue} is full`, { context: { key: queue } }),
    );
  }
  wait.count('full_wait');
  return new Promise<void>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let dispose = (): void => {};
    const waiter = {
      ...fields,
      done: false,
      resolve: () => {
        if (timer) clearTimeout(timer);
        dispose();
        resolve();
      },
      reject: (error: Error) => {
        if (timer) clearTimeout(timer);
        dispose();
        reject(error);
      },
    } as W;
    const giveUp = (error: Error, reason: string): void => {
      if (waiter.done) return;
      waiter.done = true;
      const index = producers.indexOf(waiter);
      if (index >= 0) producers.splice(index, 1);
      wait.count(reason);
      waiter.reject(error);
    };
    if (Number.isFinite(maxWaitMs)) {
      timer = unrefTimeout(
        () =>
          giveUp(
            new QueueFullError(`queue ${queue} stayed full for ${maxWaitMs} ms`, {
              context: { key: queue },
            }),
            'full_timeout',
          ),
        maxWaitMs,
      );
    }
    dispose = onAbort(signal, () => giveUp(abortError(signal!), 'aborted'));
    producers.push(waiter);
  });
}

/** Rejects every producer of `producers` with ClosedError, each counted `closed`. */
export function closeProducers(
  producers: RoomWaiter[],
  queue: string,
  count: (reason: string) => void,
): void {
  for (const producer of producers.splice(0)) {
    producer.done = true;
    count('closed');
    producer.reject(new ClosedError(`queue ${queue} was closed`, { context: { key: queue } }));
  }
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

/**
 * The settle guard of one delivery: the first call takes `id` out of `inFlight` and returns
 * true; every later call (a second ack, a release after an ack) returns false.
 */
export function settleOnce(inFlight: { delete(id: string): unknown }, id: string): () => boolean {
  let settled = false;
  return () => {
    if (settled) return false;
    settled = true;
    inFlight.delete(id);
    return true;
  };
}

/** What {@link pollForRoom} needs of its queue. */
export interface RoomPoll {
  queue: string;
  maxWaitMs: number;
  pollMs: number;
  signal: AbortSignal | undefined;
  closed: () => boolean;
  hasRoom: () => Promise<boolean>;
  /** Counts a back-pressure outcome (`full_timeout`, `aborted`, `closed`). */
  count: (reason: string) => void;
}

/**
 * A producer's wait for room in a queue it can only poll (a shared stream): resolves once there
 * is room; rejects with QueueFullError after `maxWaitMs`, the signal's reason on abort, or
 * ClosedError when the queue closes.
 */
export async function pollForRoom(poll: RoomPoll): Promise<void> {
  const deadline = performance.now() + poll.maxWaitMs;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) {
      poll.count('full_timeout');
      throw new QueueFullError(`queue ${poll.queue} stayed full for ${poll.maxWaitMs} ms`, {
        context: { key: poll.queue },
      });
    }
    try {
      await sleep(Math.min(poll.pollMs, left), poll.signal);
    } catch (error) {
      poll.count('aborted');
      throw error;
    }
    if (poll.closed()) {
      poll.count('closed');
      throw new ClosedError(`queue ${poll.queue} was closed`, { context: { key: poll.queue } });
    }
    if (await poll.hasRoom()) return;
  }
}
