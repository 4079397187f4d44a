/**
 * The receiving side shared by the stream queues ({@link RedisStreamQueue},
 * {@link ShardedStreamQueue}): the waiting receivers, the entries read but not yet handed out,
 * and the one read loop ("pump") per queue object that fills them. Each queue supplies how it
 * reads (`read`), how an entry becomes a delivery (`toDelivery`) and how an entry it lets go of
 * goes back to its stream (`requeue`); the rest is here. Also {@link streamDelivery}, the
 * delivery object of a stream entry.
 * @internal
 */
import type { Cluster, Redis } from 'ioredis';
import { abortError } from '../internal/abort.js';
import { MetricName } from '../observe/metric-names.js';
import type { Metrics } from '../observe/metrics.js';
import { classifyRedisError } from '../store/redis-errors.js';
import type { Delivery } from './queue.js';
import * as waiting from './queue-waiters.js';
import type { RawEntry } from './stream-commands.js';
import type { StreamWrites } from './stream-writes.js';

/** Options of {@link DeliveryPump}. @internal */
export interface DeliveryPumpOptions<T, E extends RawEntry> {
  /** The queue's class, for errors on bad options. */
  where: string;
  /** The queue's name, for classified Redis failures. */
  name: string;
  closed(): boolean;
  /** Creates the stream and group if missing (run before the first read). */
  start(): Promise<void>;
  /** Reads up to `wanted` entries (may return none). */
  read(wanted: number): Promise<E[]>;
  /** Called after a read that returned nothing, before the next one. */
  idle?(): Promise<void>;
  /** An entry as a delivery, or null when it was dead-lettered instead. */
  toDelivery(entry: E): Delivery<T> | null;
  /** Gives an entry that was read but never handed out back to its stream. */
  requeue(entry: E): Promise<void>;
}

/** Waiting receivers, buffered entries and the read loop of a stream queue. @internal */
export class DeliveryPump<T, E extends RawEntry> {
  readonly #o: DeliveryPumpOptions<T, E>;
  readonly #waiters: waiting.ReceiveWaiter<T>[] = [];
  readonly #buffer: E[] = [];
  #pumping = false;
  #pumpDone: Promise<void> = Promise.resolve();
  /** How many entries the next read may fetch (the free slots of the last `receiveBatch`). */
  #wanted = 1;

  constructor(options: DeliveryPumpOptions<T, E>) {
    this.#o = options;
  }

  /** Entries read but not yet handed out. */
  size(): number {
    return this.#buffer.length;
  }

  async receiveBatch(
    max: number,
    options?: { signal?: AbortSignal },
  ): Promise<Delivery<T>[] | null> {
    const n = Math.max(1, Math.floor(max));
    this.#wanted = n;
    const first = await this.receive(options);
    if (first === null) return null;
    const out = [first];
    while (out.length < n && this.#buffer.length > 0) {
      const d = this.#o.toDelivery(this.#buffer.shift()!);
      if (d) out.push(d);
    }
    return out;
  }

  receive(options?: { signal?: AbortSignal }): Promise<Delivery<T> | null> {
    let signal: AbortSignal | undefined;
    try {
      signal = waiting.receiveSignal(this.#o.where, options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.#o.closed()) return Promise.resolve(null);
    return waiting.waitForDelivery(this.#waiters, signal, () => this.#serve());
  }

  /**
   * After the queue is marked closed: waiting receivers get null, buffered entries go back to
   * their streams, and the read in flight (if any) has returned and handed its entries back.
   */
  async close(): Promise<void> {
    waiting.closeWaiters(this.#waiters);
    // buffered entries were never handed out: they keep their earlier delivery count
    for (const entry of this.#buffer.splice(0)) await this.#o.requeue(entry).catch(() => {});
    await this.#pumpDone; // a read in flight returns within blockMs; the pump hands its entries back
  }

  /** Hands buffered entries to waiters; starts the reader when waiters remain. */
  #serve(): void {
    while (this.#waiters.length > 0 && this.#buffer.length > 0) {
      const waiter = this.#waiters[0]!;
      if (waiter.done) {
        this.#waiters.shift();
        continue;
      }
      const delivery = this.#o.toDelivery(this.#buffer.shift()!);
      if (!delivery) continue; // dead-lettered: the waiter waits for the next entry
      this.#waiters.shift();
      waiter.done = true;
      waiter.resolve(delivery);
    }
    if (this.#waiters.length > 0 && !this.#pumping && !this.#o.closed())
      this.#pumpDone = this.#pump();
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      await this.#o.start();
      while (!this.#o.closed() && this.#waiters.some((w) => !w.done)) {
        const wanted = Math.max(this.#wanted, this.#waiters.filter((w) => !w.done).length);
        this.#wanted = 1;
        const entries = await this.#o.read(wanted);
        if (this.#o.closed()) {
          for (const e of entries) await this.#o.requeue(e).catch(() => {});
          break;
        }
        if (entries.length === 0) {
          await this.#o.idle?.();
          continue;
        }
        this.#buffer.push(...entries);
        this.#serve();
      }
    } catch (error) {
      const failure = classifyRedisError(error, { source: `queue ${this.#o.name}` });
      for (const w of this.#waiters.splice(0)) {
        w.done = true;
        w.reject(failure);
      }
    } finally {
      this.#pumping = false;
    }
    if (!this.#o.closed() && this.#waiters.length > 0) this.#serve();
  }
}

/** What {@link streamDelivery} needs of the queue (one per queue). @internal */
export interface StreamDeliveryQueue {
  /** The queue's name (metrics). */
  queue: string;
  /** The deliveries in hand, by their in-flight id. */
  inFlight: Set<string>;
  client: Redis | Cluster;
  group: string;
  consumer: string;
  metrics: Metrics;
  call<R>(fn: () => Promise<R>): Promise<R>;
}

/** What {@link streamDelivery} needs of one entry. @internal */
export interface StreamDeliveryEntry<T> {
  entry: RawEntry;
  /** The stream the entry is in. */
  key: string;
  message: T;
  /** Its payload as stored (what a dead letter keeps). */
  payload: string;
  deliveries: number;
  /** Its id in `inFlight`. */
  inFlightId: string;
  /** The writes of its stream. */
  writes: StreamWrites;
}

/**
 * The delivery of a stream entry: ack (XACK + XDEL, batched), touch (XCLAIM … JUSTID to this
 * consumer), release (re-added with its delivery count) and deadLetter, each settling it once.
 * @internal
 */
export function streamDelivery<T>(q: StreamDeliveryQueue, d: StreamDeliveryEntry<T>): Delivery<T> {
  const { entry, writes, deliveries, inFlightId } = d;
  q.inFlight.add(inFlightId);
  const settle = waiting.settleOnce(q.inFlight, inFlightId);
  return {
    id: entry.id,
    message: d.message,
    deliveries,
    ack: async () => {
      if (settle()) await writes.ack(entry.id);
    },
    acknowledged: () => {
      settle();
    },
    touch: async () => {
      if (!q.inFlight.has(inFlightId)) return;
      await q.call(() => q.client.xclaim(d.key, q.group, q.consumer, 0, entry.id, 'JUSTID'));
    },
    release: async () => {
      if (settle()) await writes.requeue(entry, deliveries);
    },
    deadLetter: async (reason: string) => {
      if (!settle()) return;
      q.metrics.increment(MetricName.QUEUE_DEAD_LETTER, { queue: q.queue });
      await q.call(() => writes.moveToDeadLetters(entry.id, d.payload, reason, deliveries));
    },
  };
}
