/**
 * The queue interface the chain engine reads and writes, and its in-memory implementation for
 * single-node mode. Distributed mode implements the same interface on Redis Streams.
 *
 * Back-pressure: `push` first tries to enqueue; when the queue is full the producer waits
 * (FIFO) until there is room, its signal aborts, or `maxWaitMs` passes. Every wait and every
 * refusal is counted as `queue_backpressure_total{queue, reason}`. Nothing is dropped silently.
 */
import { ClosedError } from '../errors.js';
import { abortError } from '../internal/abort.js';
import { readOptions, optionalNumber, requireString } from '../internal/validate.js';
import {
  closeProducers,
  closeWaiters,
  readPushOptions,
  receiveSignal,
  settleOnce,
  waitForDelivery,
  waitForRoom,
  type ReceiveWaiter,
} from './queue-waiters.js';
import { MetricName } from '../observe/metric-names.js';
import { noopMetrics, type Metrics } from '../observe/metrics.js';

/** One message handed to a consumer; settle it with `ack` or `release`. */
export interface Delivery<T> {
  /** Queue-assigned id of this message. */
  readonly id: string;
  /** The message. */
  readonly message: T;
  /** How many times this message has been delivered (1 on first delivery). */
  readonly deliveries: number;
  /** The message was processed: remove it for good. */
  ack(): Promise<void>;
  /** The message was not processed: make it available again (at the head of the queue). */
  release(): Promise<void>;
  /**
   * The message can never be processed: record it with `reason` where the queue keeps dead
   * letters durably (e.g. a dead-letter stream) and remove it from the queue, like `ack`.
   * Optional: the chain engine acknowledges a delivery without it (the dead letter is then only
   * in the engine's memory, `engine.deadLetters()`).
   */
  deadLetter?(reason: string): Promise<void>;
  /**
   * The message is still being worked on: keep it from being handed to another consumer as an
   * abandoned delivery (a Redis Stream queue resets its idle time). Optional: a queue that never
   * hands a delivery over to another consumer has nothing to do.
   */
  touch?(): Promise<void>;
  /**
   * The message was acknowledged by other means (a commit that handed off by itself): forget it
   * here, with no command; a later `ack` or `release` does nothing. @internal
   */
  acknowledged?(): void;
}

/** Options of {@link ChainQueue.push}. */
export interface PushOptions {
  /** Abort the wait for room. */
  signal?: AbortSignal;
  /** Longest wait for room in ms before rejecting with QueueFullError. @defaultValue Infinity */
  maxWaitMs?: number;
}

/** A queue of chain messages. */
export interface ChainQueue<T> {
  /** The queue's name, used in metrics and logs. */
  readonly name: string;
  /** Enqueues when there is room now; resolves false when full or closed. Counts a refusal. */
  offer(message: T): Promise<boolean>;
  /**
   * Enqueues, waiting for room when full.
   * @throws {@link QueueFullError} when `maxWaitMs` passes.
   * @throws {@link ClosedError} when the queue is (or gets) closed.
   */
  push(message: T, options?: PushOptions): Promise<void>;
  /** The next message, waiting until one arrives; null once the queue is closed and empty. */
  receive(options?: { signal?: AbortSignal }): Promise<Delivery<T> | null>;
  /**
   * Up to `max` messages (at least one), waiting until one arrives; null once the queue is closed
   * and empty. Optional: the engine calls it, where a queue has it, with its free slots, so one
   * read fetches as many messages as it can take on; else it calls `receive` once per message.
   */
  receiveBatch?(max: number, options?: { signal?: AbortSignal }): Promise<Delivery<T>[] | null>;
  /** Messages waiting to be received. */
  size(): number;
  /** Messages received but not yet acknowledged or released. */
  inFlight(): number;
  /** Stops accepting messages; receivers drain what is left, then get null. Waiting producers are refused. */
  close(): void;
  /**
   * Messages the queue holds anywhere — waiting, or received and not yet settled, by any
   * process. Optional: queues shared across processes implement it (a Redis Stream counts its
   * entries), so that the engine's `onIdle()` also waits for messages no process has read yet.
   */
  length?(): Promise<number>;
  /**
   * Records a message that is not a delivery of this queue (e.g. a successor that could not be
   * published to it) as a dead letter with `reason`, durably. Optional, like
   * {@link Delivery.deadLetter}.
   */
  deadLetter?(message: T, reason: string): Promise<void>;
}

/** Options of {@link MemoryQueue}. */
export interface MemoryQueueOptions {
  /** Name used in metrics and errors. */
  name: string;
  /**
   * Most messages held, waiting or in flight (received but not yet acknowledged). Counting
   * in-flight messages means a released message always fits back, and a slow consumer slows
   * its producers. @defaultValue 1000
   */
  capacity?: number;
  /** Where back-pressure counters go. @defaultValue noopMetrics */
  metrics?: Metrics;
}

interface ProducerWaiter<T> {
  message: T;
  resolve: () => void;
  reject: (error: Error) => void;
  done: boolean;
}

interface Entry<T> {
  id: string;
  message: T;
  deliveries: number;
}

/**
 * A bounded in-memory {@link ChainQueue} for single-node mode.
 *
 * @example
 * ```ts
 * const queue = new MemoryQueue<string>({ name: 'parser', capacity: 100 });
 * await queue.push('job');
 * const delivery = await queue.receive();
 * await delivery?.ack();
 * ```
 */
export class MemoryQueue<T> implements ChainQueue<T> {
  readonly name: string;
  readonly #capacity: number;
  readonly #metrics: Metrics;
  #items: Entry<T>[] = [];
  #head = 0;
  #producers: ProducerWaiter<T>[] = [];
  #consumers: ReceiveWaiter<T>[] = [];
  #inFlight = new Map<string, Entry<T>>();
  #nextId = 1;
  #closed = false;

  constructor(options: MemoryQueueOptions) {
    const where = 'MemoryQueue';
    const o = readOptions(where, options, ['name', 'capacity', 'metrics']);
    this.name = requireString(where, 'name', o.name);
    this.#capacity = optionalNumber(where, 'capacity', o.capacity, 1000, {
      integer: true,
      min: 1,
      allowInfinity: true,
    });
    this.#metrics = o.metrics ?? noopMetrics;
  }

  size(): number {
    return this.#items.length - this.#head;
  }

  inFlight(): number {
    return this.#inFlight.size;
  }

  offer(message: T): Promise<boolean> {
    return Promise.resolve(this.tryPush(message));
  }

  /** Synchronous {@link MemoryQueue.offer}: enqueues when there is room now. */
  tryPush(message: T): boolean {
    if (this.#closed) {
      this.#count('closed');
      return false;
    }
    if (!this.#hasRoom() || this.#producers.length > 0) {
      this.#count('full_refused');
      return false;
    }
    this.#enqueue({ id: String(this.#nextId++), message, deliveries: 0 });
    return true;
  }

  push(message: T, options?: PushOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    let maxWaitMs: number;
    try {
      ({ signal, maxWaitMs } = readPushOptions('MemoryQueue', options));
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#closed) {
      this.#count('closed');
      return Promise.reject(
        new ClosedError(`queue ${this.name} is closed`, { context: { key: this.name } }),
      );
    }
    if (this.#hasRoom() && this.#producers.length === 0) {
      this.#enqueue({ id: String(this.#nextId++), message, deliveries: 0 });
      return Promise.resolve();
    }
    return waitForRoom(
      this.#producers,
      { message },
      {
        queue: this.name,
        maxWaitMs,
        signal,
        count: (reason) => this.#count(reason),
      },
    );
  }

  receive(options?: { signal?: AbortSignal }): Promise<Delivery<T> | null> {
    let signal: AbortSignal | undefined;
    try {
      signal = receiveSignal('MemoryQueue', options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const entry = this.#dequeue();
    if (entry) return Promise.resolve(this.#deliver(entry));
    if (this.#closed) return Promise.resolve(null);
    return waitForDelivery(this.#consumers, signal);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeProducers(this.#producers, this.name, (reason) => this.#count(reason));
    if (this.size() === 0) closeWaiters(this.#consumers);
  }

  #hasRoom(): boolean {
    return this.size() + this.#inFlight.size < this.#capacity;
  }

  #count(reason: string): void {
    this.#metrics.increment(MetricName.QUEUE_BACKPRESSURE, { queue: this.name, reason });
  }

  /** Hands an entry to a waiting consumer, or stores it. */
  #enqueue(entry: Entry<T>, atHead = false): void {
    while (this.#consumers.length > 0) {
      const consumer = this.#consumers.shift()!;
      if (consumer.done) continue;
      consumer.done = true;
      consumer.resolve(this.#deliver(entry));
      return;
    }
    if (atHead) {
      if (this.#head > 0) this.#items[--this.#head] = entry;
      else this.#items.unshift(entry);
    } else {
      this.#items.push(entry);
    }
  }

  #dequeue(): Entry<T> | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const entry = this.#items[this.#head]!;
    (this.#items as (Entry<T> | undefined)[])[this.#head] = undefined;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }

  /** Moves waiting producers' messages in while there is room. */
  #admitProducers(): void {
    while (this.#producers.length > 0 && this.#hasRoom()) {
      const producer = this.#producers.shift()!;
      if (producer.done) continue;
      producer.done = true;
      this.#enqueue({ id: String(this.#nextId++), message: producer.message, deliveries: 0 });
      producer.resolve();
    }
  }

  #deliver(entry: Entry<T>): Delivery<T> {
    entry.deliveries++;
    this.#inFlight.set(entry.id, entry);
    const settle = settleOnce(this.#inFlight, entry.id);
    return {
      id: entry.id,
      message: entry.message,
      deliveries: entry.deliveries,
      ack: async () => {
        if (settle()) this.#admitProducers();
        this.#maybeFinishClose();
      },
      release: async () => {
        if (settle()) this.#enqueue(entry, true);
      },
    };
  }

  #maybeFinishClose(): void {
    if (this.#closed && this.size() === 0) closeWaiters(this.#consumers);
  }
}
