/**
 * A {@link ChainQueue} kept in the durable store's LMDB environment (durable single-node mode):
 * what was pushed and not acknowledged survives the process.
 *
 * - push / offer: one write transaction stores the message and puts it at the tail; bounded by
 *   `capacity` (waiting + in flight) with the same back-pressure as {@link MemoryQueue}: FIFO
 *   producer waits, `maxWaitMs`, abort, every wait and refusal counted
 *   (`queue_backpressure_total`); dead letters count `queue_dead_letter_total`, deliveries
 *   handed out again after their lease `queue_reclaimed_total`.
 * - receive: one transaction moves the head message under a visibility lease of `visibilityMs`.
 *   A delivery neither acknowledged nor released before its lease ends (its process died, or a
 *   handler hangs) is delivered again, at the head; after `maxDeliveries` such expiries it is
 *   dead-lettered instead. After a restart on the same data directory, the previous life's
 *   deliveries come back the same way, once their lease has ended.
 * - ack removes the message; release puts it back at the head at once; deadLetter moves it to
 *   the queue's dead letters (kept durably, the oldest dropped beyond `maxDeadLetters`).
 *
 * Keys (under the store's prefix): `<keyPrefix>:queue:{<name>}:` + `seq`, `head`, `ready` (sorted set
 * by order), `lease` (sorted set by lease end), `m:<id>`, `dead`, `dl:<id>`.
 */
import { ClosedError } from '../errors.js';
import { abortError } from '../internal/abort.js';
import { unrefInterval } from '../internal/clock.js';
import {
  invalid,
  optionalFunction,
  optionalNumber,
  optionalString,
  readOptions,
  requireString,
} from '../internal/validate.js';
import { MetricName } from '../observe/metric-names.js';
import { noopMetrics, type Metrics } from '../observe/metrics.js';
import { DurableBackend } from '../store/durable/durable-backend.js';
import type { DurableStore } from '../store/durable/durable-store.js';
import type { ChainQueue, Delivery, PushOptions } from './queue.js';
import { closeProducers, waitForDelivery, waitForRoom } from './queue-waiters.js';

/** Options of {@link DurableQueue}. */
export interface DurableQueueOptions<T> {
  /** The durable store the queue lives in. */
  store: DurableBackend;
  /** Name used in keys, metrics and errors. */
  name: string;
  /** Prefix of the queue's keys, after the store's own prefix. @defaultValue 'mocra' */
  keyPrefix?: string;
  /** Most messages held, waiting or in flight. @defaultValue 1000 */
  capacity?: number;
  /** How long a delivery stays invisible to other receivers before it is handed out again, in ms. @defaultValue 30000 */
  visibilityMs?: number;
  /** Lease expiries after which a message is dead-lettered instead of delivered again. @defaultValue 5 */
  maxDeliveries?: number;
  /** Dead letters kept; the oldest are dropped beyond this. @defaultValue 10000 */
  maxDeadLetters?: number;
  /** How often a waiting receiver looks for deliveries whose lease ended, in ms. @defaultValue 250 */
  pollMs?: number;
  /** Encodes a message for storage. @defaultValue JSON.stringify */
  encode?: (message: T) => string;
  /** Decodes a stored message; throwing dead-letters it with the error's message. @defaultValue JSON.parse */
  decode?: (payload: string) => T;
  /** Where back-pressure counters go. @defaultValue noopMetrics */
  metrics?: Metrics;
}

/** A dead letter as read back by {@link DurableQueue.deadLetters}. */
export interface DurableDeadLetter {
  /** The message's id in the queue. */
  id: string;
  /** Why it was dead-lettered. */
  reason: string;
  /** The stored (encoded) message. */
  payload: string;
  /** How many times it had been delivered. */
  deliveries: number;
  /** When it was dead-lettered (store clock, ms). */
  at: number;
}

interface Stored {
  p: string;
  d: number;
}

interface Producer {
  payload: string;
  resolve: () => void;
  reject: (error: Error) => void;
  done: boolean;
}

interface Consumer<T> {
  resolve: (delivery: Delivery<T> | null) => void;
  reject: (error: Error) => void;
  done: boolean;
}

const W = 'DurableQueue';

/**
 * A bounded, durable {@link ChainQueue}: at-least-once delivery with a visibility lease and dead
 * letters, on a {@link DurableBackend}.
 *
 * @example
 * ```ts
 * const store = await DurableBackend.open({ path: './mocra-data' });
 * const queue = new DurableQueue<string>({ store, name: 'parser' });
 * await queue.push('job');
 * const delivery = await queue.receive();
 * await delivery?.ack();
 * ```
 */
export class DurableQueue<T> implements ChainQueue<T> {
  readonly name: string;
  readonly #s: DurableStore;
  readonly #k: (part: string) => string;
  readonly #capacity: number;
  readonly #visibilityMs: number;
  readonly #maxDeliveries: number;
  readonly #maxDeadLetters: number;
  readonly #pollMs: number;
  readonly #encode: (message: T) => string;
  readonly #decode: (payload: string) => T;
  readonly #metrics: Metrics;
  #producers: Producer[] = [];
  #consumers: Consumer<T>[] = [];
  #poll: ReturnType<typeof setInterval> | null = null;
  #closed = false;

  /** @throws {@link ConfigError} on invalid options. */
  constructor(options: DurableQueueOptions<T>) {
    const o = readOptions(W, options, [
      'store',
      'name',
      'keyPrefix',
      'capacity',
      'visibilityMs',
      'maxDeliveries',
      'maxDeadLetters',
      'pollMs',
      'encode',
      'decode',
      'metrics',
    ]);
    if (!(o.store instanceof DurableBackend)) invalid(W, 'store', 'a DurableBackend', o.store);
    this.name = requireString(W, 'name', o.name);
    this.#s = o.store.store;
    const prefix = optionalString(W, 'keyPrefix', o.keyPrefix, 'mocra');
    const base = `${o.store.keyPrefix}${prefix}:queue:{${this.name}}:`;
    this.#k = (part) => base + part;
    const positive = { integer: true, min: 1 };
    this.#capacity = optionalNumber(W, 'capacity', o.capacity, 1000, {
      ...positive,
      allowInfinity: true,
    });
    this.#visibilityMs = optionalNumber(W, 'visibilityMs', o.visibilityMs, 30_000, positive);
    this.#maxDeliveries = optionalNumber(W, 'maxDeliveries', o.maxDeliveries, 5, positive);
    this.#maxDeadLetters = optionalNumber(W, 'maxDeadLetters', o.maxDeadLetters, 10_000, positive);
    this.#pollMs = optionalNumber(W, 'pollMs', o.pollMs, 250, positive);
    this.#encode =
      optionalFunction<(m: T) => string>(W, 'encode', o.encode) ?? ((m: T) => JSON.stringify(m));
    this.#decode =
      optionalFunction<(p: string) => T>(W, 'decode', o.decode) ?? ((p) => JSON.parse(p) as T);
    this.#metrics = o.metrics ?? noopMetrics;
  }

  size(): number {
    return this.#s.zcard(this.#k('ready'));
  }

  inFlight(): number {
    return this.#s.zcard(this.#k('lease'));
  }

  offer(message: T): Promise<boolean> {
    try {
      return Promise.resolve(this.tryPush(message));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** Synchronous {@link DurableQueue.offer}: stores the message when there is room now. */
  tryPush(message: T): boolean {
    if (this.#closed) {
      this.#count('closed');
      return false;
    }
    const payload = this.#encode(message);
    if (!this.#hasRoom() || this.#producers.length > 0) {
      this.#count('full_refused');
      return false;
    }
    this.#enqueue(payload);
    return true;
  }

  push(message: T, options: PushOptions = {}): Promise<void> {
    if (this.#closed) {
      this.#count('closed');
      return Promise.reject(
        new ClosedError(`queue ${this.name} is closed`, { context: { key: this.name } }),
      );
    }
    let payload: string;
    try {
      payload = this.#encode(message);
      if (this.#hasRoom() && this.#producers.length === 0) {
        this.#enqueue(payload);
        return Promise.resolve();
      }
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const { signal, maxWaitMs = Infinity } = options;
    return waitForRoom(
      this.#producers,
      { payload },
      {
        queue: this.name,
        maxWaitMs,
        signal,
        count: (reason) => this.#count(reason),
      },
    );
  }

  receive(options: { signal?: AbortSignal } = {}): Promise<Delivery<T> | null> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    let delivery: Delivery<T> | null;
    try {
      delivery = this.#take();
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (delivery) return Promise.resolve(delivery);
    if (this.#closed) return Promise.resolve(null);
    return waitForDelivery(this.#consumers, signal, () => {
      this.#poll ??= unrefInterval(() => this.#serve(), this.#pollMs);
    });
  }

  async deadLetter(message: T, reason: string): Promise<void> {
    const payload = this.#encode(message);
    this.#s.transaction(() => {
      const id = String(this.#s.incr(this.#k('seq')));
      this.#toDead(id, { p: payload, d: 0 }, reason);
    });
  }

  /** The dead letters kept, oldest first. */
  deadLetters(): DurableDeadLetter[] {
    return this.#s.zrangeByScore(this.#k('dead'), -Infinity, Infinity).flatMap((id) => {
      const text = this.#s.get(this.#k(`dl:${id}`));
      if (text === null) return [];
      const r = JSON.parse(text) as { p: string; r: string; d: number; at: number };
      return [{ id, reason: r.r, payload: r.p, deliveries: r.d, at: r.at }];
    });
  }

  /**
   * Puts dead letter `id` back at the tail of the queue as a new message (its deliveries
   * counted from 0 again) and removes it from the dead letters, in one transaction. It does not
   * wait for room: a replay may take the queue past its capacity for a while. Returns the new
   * message's id, or null when there is no such dead letter (replayed or dropped meanwhile).
   * @throws {@link ClosedError} once the queue is closed.
   */
  replayDeadLetter(id: string): string | null {
    if (this.#closed)
      throw new ClosedError(`queue ${this.name} is closed`, { context: { key: this.name } });
    const replayed = this.#s.transaction(() => {
      const text = this.#s.get(this.#k(`dl:${id}`));
      if (text === null) return null;
      const { p } = JSON.parse(text) as { p: string };
      this.#s.zrem(this.#k('dead'), id);
      this.#s.del(this.#k(`dl:${id}`));
      return this.#store(p);
    });
    if (replayed !== null) this.#serve();
    return replayed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeProducers(this.#producers, this.name, (reason) => this.#count(reason));
    this.#serve();
  }

  #hasRoom(): boolean {
    return this.size() + this.inFlight() < this.#capacity;
  }

  #count(reason: string): void {
    this.#metrics.increment(MetricName.QUEUE_BACKPRESSURE, { queue: this.name, reason });
  }

  #enqueue(payload: string): void {
    this.#s.transaction(() => this.#store(payload));
    this.#serve();
  }

  /** Stores a new message at the tail (inside the caller's transaction); returns its id. */
  #store(payload: string): string {
    const id = this.#s.incr(this.#k('seq'));
    this.#s.set(this.#k(`m:${id}`), JSON.stringify({ p: payload, d: 0 } satisfies Stored));
    this.#s.zadd(this.#k('ready'), id, String(id));
    return String(id);
  }

  /** Hands ready messages to waiting receivers; ends their wait once closed and drained. */
  #serve(): void {
    while (this.#consumers.length > 0) {
      const consumer = this.#consumers[0]!;
      if (consumer.done) {
        this.#consumers.shift();
        continue;
      }
      let delivery: Delivery<T> | null;
      try {
        delivery = this.#take();
      } catch (error) {
        this.#consumers.shift();
        consumer.done = true;
        consumer.reject(error as Error);
        continue;
      }
      if (!delivery) break;
      this.#consumers.shift();
      consumer.done = true;
      consumer.resolve(delivery);
    }
    if (this.#closed && this.size() === 0) {
      for (const consumer of this.#consumers.splice(0)) {
        consumer.done = true;
        consumer.resolve(null);
      }
    }
    if (this.#consumers.length === 0 && this.#poll) {
      clearInterval(this.#poll);
      this.#poll = null;
    }
  }

  /** Moves the head message under a lease and returns its delivery; null when none is ready. */
  #take(): Delivery<T> | null {
    for (;;) {
      const taken = this.#s.transaction(() => {
        this.#reclaim();
        const [id] = this.#s.zrangeByScore(this.#k('ready'), -Infinity, Infinity, 0, 1);
        if (id === undefined) return null;
        this.#s.zrem(this.#k('ready'), id);
        const text = this.#s.get(this.#k(`m:${id}`));
        if (text === null) return { id, rec: null };
        const rec = JSON.parse(text) as Stored;
        rec.d++;
        this.#s.set(this.#k(`m:${id}`), JSON.stringify(rec));
        this.#s.zadd(this.#k('lease'), this.#s.now() + this.#visibilityMs, id);
        return { id, rec };
      });
      if (taken === null) return null;
      if (taken.rec === null) continue; // a ready id without its message: skip it
      let message: T;
      try {
        message = this.#decode(taken.rec.p);
      } catch (error) {
        const reason = `undecodable: ${error instanceof Error ? error.message : String(error)}`;
        this.#s.transaction(() => {
          this.#s.zrem(this.#k('lease'), taken.id);
          this.#toDead(taken.id, taken.rec!, reason);
        });
        this.#admitProducers();
        continue;
      }
      return this.#delivery(taken.id, message, taken.rec.d);
    }
  }

  /** Deliveries whose lease ended go back to the head, or to the dead letters when worn out. */
  #reclaim(): void {
    const expired = this.#s.zrangeByScore(this.#k('lease'), -Infinity, this.#s.now());
    for (const id of expired) {
      this.#s.zrem(this.#k('lease'), id);
      const text = this.#s.get(this.#k(`m:${id}`));
      if (text === null) continue;
      const rec = JSON.parse(text) as Stored;
      this.#metrics.increment(MetricName.QUEUE_RECLAIMED, { queue: this.name });
      if (rec.d >= this.#maxDeliveries) {
        this.#toDead(id, rec, `lease expired ${rec.d} times without an acknowledgement`);
      } else {
        this.#s.zadd(this.#k('ready'), this.#s.incr(this.#k('head'), -1), id);
      }
    }
  }

  #toDead(id: string, rec: Stored, reason: string): void {
    this.#metrics.increment(MetricName.QUEUE_DEAD_LETTER, { queue: this.name });
    const now = this.#s.now();
    this.#s.del(this.#k(`m:${id}`));
    this.#s.set(this.#k(`dl:${id}`), JSON.stringify({ p: rec.p, r: reason, d: rec.d, at: now }));
    const dead = this.#k('dead');
    this.#s.zadd(dead, this.#s.incr(this.#k('deadSeq')), id);
    const excess = this.#s.zcard(dead) - this.#maxDeadLetters;
    if (excess > 0) {
      for (const old of this.#s.zrangeByScore(dead, -Infinity, Infinity, 0, excess)) {
        this.#s.zrem(dead, old);
        this.#s.del(this.#k(`dl:${old}`));
      }
    }
  }

  #admitProducers(): void {
    while (this.#producers.length > 0 && this.#hasRoom()) {
      const producer = this.#producers.shift()!;
      if (producer.done) continue;
      producer.done = true;
      this.#enqueue(producer.payload);
      producer.resolve();
    }
  }

  #delivery(id: string, message: T, deliveries: number): Delivery<T> {
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      return true;
    };
    return {
      id,
      message,
      deliveries,
      ack: async () => {
        if (!settle()) return;
        this.#s.transaction(() => {
          this.#s.del(this.#k(`m:${id}`));
          this.#s.zrem(this.#k('lease'), id);
        });
        this.#admitProducers();
        this.#serve();
      },
      release: async () => {
        if (!settle()) return;
        this.#s.transaction(() => {
          if (this.#s.zscore(this.#k('lease'), id) === null) return; // lease ended meanwhile
          this.#s.zrem(this.#k('lease'), id);
          this.#s.zadd(this.#k('ready'), this.#s.incr(this.#k('head'), -1), id);
        });
        this.#serve();
      },
      deadLetter: async (reason: string) => {
        if (!settle()) return;
        this.#s.transaction(() => {
          this.#s.zrem(this.#k('lease'), id);
          const text = this.#s.get(this.#k(`m:${id}`));
          if (text !== null) this.#toDead(id, JSON.parse(text) as Stored, reason);
        });
        this.#admitProducers();
        this.#serve();
      },
    };
  }
}
