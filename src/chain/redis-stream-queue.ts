/**
 * A {@link ChainQueue} on a Redis Stream with a consumer group: at-least-once delivery across
 * processes. Every process that consumes uses the same `group` and its own `consumer` name.
 *
 * - push: XADD when the stream holds fewer than `capacity` entries, else wait (polling, FIFO
 *   within the process) — the bound is soft across processes, exact within one. The pushes of
 *   one tick go out together: one XLEN for the batch, then its XADDs pipelined.
 * - receive: one reader per queue object runs XREADGROUP ... COUNT n BLOCK and hands entries to
 *   the waiting receivers, so an aborted receive returns at once without dropping a connection;
 *   `receiveBatch(n)` reads up to n entries in one round trip. Deliveries idle for
 *   `claimIdleMs` (their consumer died) are taken over with XAUTOCLAIM, and consumers that hold
 *   nothing and have been idle that long are removed from the group.
 * - ack: XACK + XDEL, the acks of one tick in one MULTI. touch: XCLAIM … JUSTID to this
 *   consumer, which resets the delivery's idle time (a long step stays its consumer's).
 *   release: the entry is re-added (its delivery count carried along) and the old one
 *   acknowledged, in one MULTI. deadLetter: the entry is copied to the dead-letter stream with a
 *   reason, then acknowledged.
 * - A message that cannot be decoded, or was delivered more than `maxDeliveries` times, goes to
 *   the dead-letter stream with its reason and original payload, and is acknowledged: it never
 *   blocks the queue or crashes a worker. The dead-letter stream is bounded in length
 *   (`deadLetterMaxLen`) and age (`deadLetterMaxAgeMs`).
 *
 * On a Redis Cluster (pass an ioredis `Cluster`): every command names the stream key only, and
 * the MULTIs (ack = XACK + XDEL, release = XADD + XACK + XDEL) touch that one key, so a stream
 * and everything done to it live in one slot, on one master. The dead-letter stream is another
 * key (possibly on another master) and is written by commands of its own.
 */
import type { Cluster, Redis } from 'ioredis';
import { ClosedError, QueueFullError, isMocraError } from '../errors.js';
import { abortError } from '../internal/abort.js';
import { invalid, readOptions, requireFunction, requireString } from '../internal/validate.js';
import { MetricName } from '../observe/metric-names.js';
import type { Metrics } from '../observe/metrics.js';
import { CommandDeadline } from '../store/command-deadline.js';
import { classifyRedisError } from '../store/redis-errors.js';
import type { ChainQueue, Delivery, PushOptions } from './queue.js';
import * as waiting from './queue-waiters.js';
import { DeliveryPump, streamDelivery, type StreamDeliveryQueue } from './delivery-pump.js';
import {
  claimIdle,
  createGroup,
  leaveGroupIfIdle,
  openReader,
  priorDeliveries,
  readNew,
  reapConsumers,
  fieldOf,
  type DeadLetter,
  type DeadLetterBound,
  type RawEntry,
  type QueuePlace,
  type StreamPlace,
} from './stream-commands.js';
import {
  TUNING_KEYS,
  readStreamQueueTuning,
  type RedisStreamQueueOptions,
} from './stream-queue-tuning.js';
import { StreamWrites } from './stream-writes.js';

const where = 'RedisStreamQueue';

/**
 * A distributed {@link ChainQueue} on Redis Streams.
 *
 * @example
 * ```ts
 * const queue = new RedisStreamQueue<string>({ client, name: 'parser', key: 'q:{run}:parser',
 *   deadLetterKey: 'q:{run}:dead', group: 'workers', consumer: `w-${process.pid}`,
 *   encode: (s) => s, decode: (s) => s });
 * await queue.start();
 * ```
 */
export class RedisStreamQueue<T> implements ChainQueue<T> {
  readonly name: string;
  readonly #client: Redis | Cluster;
  #reader: Redis | Cluster | null = null;
  #opening: Promise<Redis | Cluster> | null = null;
  readonly #o: Required<Omit<RedisStreamQueueOptions<T>, 'client' | 'metrics'>>;
  readonly #bound: DeadLetterBound;
  readonly #metrics: Metrics;
  readonly #deadline: CommandDeadline;
  readonly #place: StreamPlace;
  readonly #pump: DeliveryPump<T, RawEntry>;
  readonly #inFlight = new Set<string>();
  readonly #deliveryQueue: StreamDeliveryQueue;
  #closed = false;
  #started: Promise<void> | null = null;
  #shutdown: Promise<void> | null = null;
  #lastClaimAt = 0;
  #lastReapAt = 0;
  #producersWaiting = 0;
  readonly #writes: StreamWrites;

  constructor(options: RedisStreamQueueOptions<T>) {
    const o = readOptions(where, options, [
      'client',
      'name',
      'key',
      'deadLetterKey',
      'group',
      'consumer',
      'encode',
      'decode',
      ...TUNING_KEYS,
    ]);
    if (
      !o.client ||
      typeof (o.client as Redis).xadd !== 'function' ||
      typeof (o.client as Redis).duplicate !== 'function'
    ) {
      invalid(where, 'client', 'an ioredis Redis or Cluster client', o.client);
    }
    this.#client = o.client;
    this.name = requireString(where, 'name', o.name);
    const tuning = readStreamQueueTuning(where, o);
    this.#o = Object.freeze({
      name: this.name,
      key: requireString(where, 'key', o.key),
      deadLetterKey: requireString(where, 'deadLetterKey', o.deadLetterKey),
      group: requireString(where, 'group', o.group),
      consumer: requireString(where, 'consumer', o.consumer),
      encode: requireFunction<(m: T) => string>(where, 'encode', o.encode),
      decode: requireFunction<(p: string) => T>(where, 'decode', o.decode),
      ...tuning,
    });
    this.#metrics = tuning.metrics;
    this.#deadline = new CommandDeadline(tuning.commandTimeoutMs);
    this.#place = { client: this.#client, key: this.#o.key, group: this.#o.group };
    this.#bound = { maxLen: tuning.deadLetterMaxLen, maxAgeMs: tuning.deadLetterMaxAgeMs };
    this.#writes = new StreamWrites({
      name: this.name,
      place: this.#place,
      capacity: this.#o.capacity,
      deadLetterKey: this.#o.deadLetterKey,
      bound: this.#bound,
      call: (fn) => this.#call(fn),
    });
    this.#deliveryQueue = {
      queue: this.name,
      inFlight: this.#inFlight,
      client: this.#client,
      group: this.#o.group,
      consumer: this.#o.consumer,
      metrics: this.#metrics,
      call: (fn) => this.#call(fn),
    };
    this.#pump = new DeliveryPump({
      where,
      name: this.name,
      closed: () => this.#closed,
      start: () => this.start(),
      read: (wanted) => this.#read(wanted),
      toDelivery: (entry) => this.#toDelivery(entry),
      requeue: (entry) => this.#writes.requeue(entry, priorDeliveries(entry)),
    });
  }

  /** Where the stream is, for the chain engine's commit hand-off. @internal */
  get place(): QueuePlace {
    const { consumer, capacity, claimIdleMs } = this.#o;
    return { ...this.#place, consumer, capacity, claimIdleMs };
  }

  /** Creates the stream and the consumer group if missing. Called by the first push/receive too. */
  start(): Promise<void> {
    this.#started ??= this.#call(() => createGroup(this.#place)).catch((error: unknown) => {
      this.#started = null;
      throw error;
    });
    return this.#started;
  }

  /** How long (ms) a delivery stays idle before another consumer takes it over. */
  get claimIdleMs(): number {
    return this.#o.claimIdleMs;
  }

  size(): number {
    return this.#pump.size();
  }

  inFlight(): number {
    return this.#inFlight.size;
  }

  /** Entries in the stream (waiting, pending or in flight anywhere). */
  async length(): Promise<number> {
    return this.#writes.length();
  }

  async offer(message: T): Promise<boolean> {
    if (this.#closed) {
      this.#count('closed');
      return false;
    }
    await this.start();
    if (this.#producersWaiting > 0 || !(await this.#writes.tryAdd(this.#o.encode(message)))) {
      this.#count('full_refused');
      return false;
    }
    return true;
  }

  async push(message: T, options?: PushOptions): Promise<void> {
    const { signal, maxWaitMs } = waiting.readPushOptions(where, options);
    if (this.#closed) {
      this.#count('closed');
      throw new ClosedError(`queue ${this.name} is closed`, { context: { key: this.name } });
    }
    if (signal?.aborted) throw abortError(signal);
    await this.start();
    const payload = this.#o.encode(message);
    if (this.#producersWaiting === 0 && (await this.#writes.tryAdd(payload))) return;
    if (maxWaitMs <= 0) {
      this.#count('full_refused');
      throw new QueueFullError(`queue ${this.name} is full`, { context: { key: this.name } });
    }
    this.#count('full_wait');
    this.#producersWaiting++;
    try {
      await waiting.pollForRoom({
        queue: this.name,
        maxWaitMs,
        pollMs: this.#o.pollMs,
        signal,
        closed: () => this.#closed,
        hasRoom: () => this.#writes.hasRoom(),
        count: (reason) => this.#count(reason),
      });
      await this.#writes.add(payload, 0);
    } finally {
      this.#producersWaiting--;
    }
  }

  receiveBatch(max: number, options?: { signal?: AbortSignal }): Promise<Delivery<T>[] | null> {
    return this.#pump.receiveBatch(max, options);
  }

  receive(options?: { signal?: AbortSignal }): Promise<Delivery<T> | null> {
    return this.#pump.receive(options);
  }

  /**
   * Records `message` in the dead-letter stream with `reason` (for a message that is not a
   * delivery of this queue, e.g. one that could not be pushed). Use `delivery.deadLetter(reason)`
   * for a received message.
   * @throws {@link BackendUnavailableError} when Redis cannot be reached.
   */
  async deadLetter(message: T, reason: string): Promise<void> {
    const payload = this.#o.encode(message);
    this.#metrics.increment(MetricName.QUEUE_DEAD_LETTER, { queue: this.name });
    await this.#writes.appendDeadLetter(payload, reason);
  }

  /** Reads back dead letters (oldest first), for operators and tests. */
  async deadLetters(count = 100): Promise<DeadLetter[]> {
    return this.#writes.deadLetters(count);
  }

  /**
   * Stops receiving: waiting receivers get null, buffered (not yet handed out) entries are
   * released for other consumers. In-flight deliveries can still be acked or released.
   * {@link RedisStreamQueue.shutdown} does the same and says when it is finished.
   */
  close(): void {
    void this.shutdown();
  }

  /**
   * Closes the queue (see {@link RedisStreamQueue.close}) and resolves once it has let go of
   * everything it read but did not hand out: buffered entries are back in the stream, the
   * blocking read has returned (within `blockMs`) and anything it brought is back too, and the
   * reading connection is closed. When this consumer then holds no pending delivery it is
   * removed from the group. Deliveries already handed out are not waited for: settle them first
   * (the chain engine's `stop()` does). Never rejects; the client passed in stays open.
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#close();
    return this.#shutdown;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    await this.#pump.close();
    const reader = this.#reader ?? (await this.#opening?.catch(() => null)) ?? null;
    this.#reader = null;
    this.#opening = null;
    reader?.disconnect();
    if (this.#started !== null && this.#inFlight.size === 0) {
      await leaveGroupIfIdle(this.#place, this.#o.consumer, (fn) => this.#call(fn));
    }
  }

  #count(reason: string): void {
    this.#metrics.increment(MetricName.QUEUE_BACKPRESSURE, { queue: this.name, reason });
  }

  /** A buffered entry as a delivery, or null when it was dead-lettered instead. */
  #toDelivery(entry: RawEntry): Delivery<T> | null {
    const deliveries = entry.deliveries + Number(fieldOf(entry.fields, 'd') ?? 0);
    const payload = fieldOf(entry.fields, 'p');
    let message: T;
    try {
      if (payload === undefined) throw new Error('entry has no payload field');
      if (deliveries > this.#o.maxDeliveries) {
        void this.#deadLetter(
          entry,
          payload,
          `delivered ${deliveries} times (maxDeliveries ${this.#o.maxDeliveries})`,
          deliveries,
        );
        return null;
      }
      message = this.#o.decode(payload);
    } catch (error) {
      const reason = isMocraError(error)
        ? `${error.code}: ${error.message}`
        : `undecodable: ${(error as Error).message}`;
      void this.#deadLetter(entry, payload ?? '', reason, deliveries);
      return null;
    }
    return streamDelivery(this.#deliveryQueue, {
      entry,
      key: this.#o.key,
      message,
      payload,
      deliveries,
      inFlightId: entry.id,
      writes: this.#writes,
    });
  }

  async #deadLetter(
    entry: RawEntry,
    payload: string,
    reason: string,
    deliveries: number,
  ): Promise<void> {
    this.#metrics.increment(MetricName.QUEUE_DEAD_LETTER, { queue: this.name });
    try {
      await this.#writes.moveToDeadLetters(entry.id, payload, reason, deliveries);
    } catch {
      // left pending: it will be claimed again and dead-lettered then
    }
  }

  /** Claims abandoned entries (throttled), else blocks for new ones. */
  async #read(wanted: number): Promise<RawEntry[]> {
    const now = performance.now();
    if (now - this.#lastClaimAt >= Math.min(this.#o.claimIdleMs / 2, 1_000)) {
      this.#lastClaimAt = now;
      const claimed = await this.#claim(wanted);
      if (now - this.#lastReapAt >= this.#o.claimIdleMs) {
        this.#lastReapAt = now;
        // best effort: a consumer left in the group is harmless, only untidy
        await this.#call(() =>
          reapConsumers(this.#place, this.#o.consumer, this.#o.claimIdleMs),
        ).catch(() => {});
      }
      if (claimed.length > 0) return claimed;
    }
    const reader = this.#reader ?? (await this.#openReader());
    const { blockMs } = this.#o;
    try {
      return await this.#deadline.run(
        () => readNew(reader, this.#place, this.#o.consumer, wanted, blockMs),
        blockMs,
      );
    } catch (error) {
      // a read that never answered leaves its connection unusable: the next read opens another
      if (this.#reader === reader) this.#reader = null;
      reader.disconnect();
      throw error;
    }
  }

  /** The connection of the blocking reads (see `openReader`), once per queue. */
  async #openReader(): Promise<Redis | Cluster> {
    this.#opening ??= openReader(this.#client);
    try {
      const reader = await this.#opening;
      if (this.#closed) {
        reader.disconnect();
        throw new ClosedError(`queue ${this.name} is closed`, { context: { key: this.name } });
      }
      this.#reader = reader;
      return reader;
    } finally {
      this.#opening = null;
    }
  }

  async #claim(count: number): Promise<RawEntry[]> {
    const call = <R>(fn: () => Promise<R>): Promise<R> => this.#call(fn);
    const claimed = await claimIdle(
      this.#place,
      this.#o.consumer,
      this.#o.claimIdleMs,
      count,
      call,
    );
    if (claimed.length > 0)
      this.#metrics.increment(MetricName.QUEUE_RECLAIMED, { queue: this.name }, claimed.length);
    return claimed;
  }

  /** One Redis call: bounded by `commandTimeoutMs`, failures classified (one classifier for every caller). */
  async #call<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await this.#deadline.run(fn);
    } catch (error) {
      throw classifyRedisError(error, { source: `queue ${this.name}` });
    }
  }
}

export type { DeadLetter } from './stream-commands.js';
export type { RedisStreamQueueOptions } from './stream-queue-tuning.js';
