/**
 * A {@link ChainQueue} on a Redis Stream with a consumer group: at-least-once delivery across
 * processes. Every process that consumes uses the same `group` and its own `consumer` name.
 *
 * - push: XADD when the stream holds fewer than `capacity` entries, else wait (polling, FIFO
 *   within the process) — the bound is soft across processes, exact within one.
 * - receive: one reader per queue object runs XREADGROUP ... BLOCK and hands entries to the
 *   waiting receivers, so an aborted receive returns at once without dropping a connection.
 *   Deliveries idle for `claimIdleMs` (their consumer died) are taken over with XAUTOCLAIM.
 * - ack: XACK + XDEL. release: the entry is re-added (its delivery count carried along) and the
 *   old one acknowledged, in one MULTI. deadLetter: the entry is copied to the dead-letter stream
 *   with a reason, then acknowledged.
 * - A message that cannot be decoded, or was delivered more than `maxDeliveries` times, goes to
 *   the dead-letter stream with its reason and original payload, and is acknowledged: it never
 *   blocks the queue or crashes a worker.
 *
 * On a Redis Cluster (pass an ioredis `Cluster`): every command names the stream key only, and
 * the MULTIs (ack = XACK + XDEL, release = XADD + XACK + XDEL) touch that one key, so a stream
 * and everything done to it live in one slot, on one master. The dead-letter stream is another
 * key (possibly on another master) and is written by commands of its own.
 */
import type { Cluster, Redis } from 'ioredis';
import { BackendUnavailableError, QueueFullError, isMocraError } from '../errors.js';
import { abortError, onAbort, sleep } from '../internal/abort.js';
import {
  invalid,
  optionalNumber,
  readOptions,
  requireFunction,
  requireString,
} from '../internal/validate.js';
import { MetricName } from '../observe/metric-names.js';
import { noopMetrics, type Metrics } from '../observe/metrics.js';
import { keySlot } from '../store/key-slot.js';
import type { ChainQueue, Delivery, PushOptions } from './queue.js';

/** Options of {@link RedisStreamQueue}. */
export interface RedisStreamQueueOptions<T> {
  /**
   * An ioredis client: a `Redis` (one server or a primary) or a `Cluster`. The queue duplicates
   * it for its blocking reads (and closes the duplicate on shutdown); it never closes `client`.
   */
  client: Redis | Cluster;
  /** Queue name for metrics and errors. */
  name: string;
  /** The stream key (full key: build it with the key builder). */
  key: string;
  /** The dead-letter stream key. */
  deadLetterKey: string;
  /** Consumer group name, shared by every process. */
  group: string;
  /** This consumer's name, unique per process. */
  consumer: string;
  /** Encodes a message to the stream payload. */
  encode: (message: T) => string;
  /** Decodes a payload; throwing dead-letters the entry with the error's message as reason. */
  decode: (payload: string) => T;
  /** Most entries in the stream before producers wait (soft across processes). @defaultValue 10000 */
  capacity?: number;
  /** Deliveries idle longer than this (ms) are taken over from their consumer. @defaultValue 30000 */
  claimIdleMs?: number;
  /** Deliveries after which an entry is dead-lettered. @defaultValue 5 */
  maxDeliveries?: number;
  /** Longest block of one XREADGROUP in ms. @defaultValue 1000 */
  blockMs?: number;
  /** Poll period of a producer waiting for room, in ms. @defaultValue 25 */
  pollMs?: number;
  /** Where counters go. @defaultValue noopMetrics */
  metrics?: Metrics;
}

/** A dead-lettered entry as read back by {@link RedisStreamQueue.deadLetters}. */
export interface DeadLetter {
  /** Id in the dead-letter stream. */
  id: string;
  /** Why the entry was dead-lettered. */
  reason: string;
  /** The original payload. */
  payload: string;
  /** The original entry id. */
  originalId: string;
  /** Deliveries before it was dead-lettered. */
  deliveries: number;
}

interface Waiter<T> {
  resolve: (d: Delivery<T> | null) => void;
  reject: (e: Error) => void;
  done: boolean;
}

interface RawEntry {
  id: string;
  fields: string[];
  deliveries: number;
}

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
  readonly #metrics: Metrics;
  readonly #waiters: Waiter<T>[] = [];
  readonly #buffer: RawEntry[] = [];
  readonly #inFlight = new Set<string>();
  #pumping = false;
  #closed = false;
  #started: Promise<void> | null = null;
  #pumpDone: Promise<void> = Promise.resolve();
  #shutdown: Promise<void> | null = null;
  #lastClaimAt = 0;
  #producersWaiting = 0;

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
      'capacity',
      'claimIdleMs',
      'maxDeliveries',
      'blockMs',
      'pollMs',
      'metrics',
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
    this.#o = Object.freeze({
      name: this.name,
      key: requireString(where, 'key', o.key),
      deadLetterKey: requireString(where, 'deadLetterKey', o.deadLetterKey),
      group: requireString(where, 'group', o.group),
      consumer: requireString(where, 'consumer', o.consumer),
      encode: requireFunction<(m: T) => string>(where, 'encode', o.encode),
      decode: requireFunction<(p: string) => T>(where, 'decode', o.decode),
      capacity: optionalNumber(where, 'capacity', o.capacity, 10_000, {
        integer: true,
        min: 1,
        allowInfinity: true,
      }),
      claimIdleMs: optionalNumber(where, 'claimIdleMs', o.claimIdleMs, 30_000, {
        integer: true,
        min: 1,
      }),
      maxDeliveries: optionalNumber(where, 'maxDeliveries', o.maxDeliveries, 5, {
        integer: true,
        min: 1,
      }),
      blockMs: optionalNumber(where, 'blockMs', o.blockMs, 1_000, { integer: true, min: 1 }),
      pollMs: optionalNumber(where, 'pollMs', o.pollMs, 25, { integer: true, min: 1 }),
    });
    this.#metrics = o.metrics ?? noopMetrics;
  }

  /** Creates the stream and the consumer group if missing. Called by the first push/receive too. */
  start(): Promise<void> {
    this.#started ??= this.#call(async () => {
      try {
        await this.#xgroup('CREATE', this.#o.key, this.#o.group, '0', 'MKSTREAM');
      } catch (error) {
        if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
      }
    }).catch((error: unknown) => {
      this.#started = null;
      throw error;
    });
    return this.#started;
  }

  size(): number {
    return this.#buffer.length;
  }

  inFlight(): number {
    return this.#inFlight.size;
  }

  /** Entries in the stream (waiting, pending or in flight anywhere). */
  async length(): Promise<number> {
    return this.#call(() => this.#client.xlen(this.#o.key));
  }

  async offer(message: T): Promise<boolean> {
    if (this.#closed) {
      this.#count('closed');
      return false;
    }
    await this.start();
    if (this.#producersWaiting > 0 || !(await this.#hasRoom())) {
      this.#count('full_refused');
      return false;
    }
    await this.#add(this.#o.encode(message), 0);
    return true;
  }

  async push(message: T, options: PushOptions = {}): Promise<void> {
    const { signal, maxWaitMs = Infinity } = options;
    if (this.#closed) {
      this.#count('closed');
      throw new QueueFullError(`queue ${this.name} is closed`, { context: { key: this.name } });
    }
    if (signal?.aborted) throw abortError(signal);
    await this.start();
    const payload = this.#o.encode(message);
    if (this.#producersWaiting === 0 && (await this.#hasRoom())) {
      await this.#add(payload, 0);
      return;
    }
    if (maxWaitMs <= 0) {
      this.#count('full_refused');
      throw new QueueFullError(`queue ${this.name} is full`, { context: { key: this.name } });
    }
    this.#count('full_wait');
    this.#producersWaiting++;
    const deadline = performance.now() + maxWaitMs;
    try {
      for (;;) {
        const left = deadline - performance.now();
        if (left <= 0) {
          this.#count('full_timeout');
          throw new QueueFullError(`queue ${this.name} stayed full for ${maxWaitMs} ms`, {
            context: { key: this.name },
          });
        }
        try {
          await sleep(Math.min(this.#o.pollMs, left), signal);
        } catch (error) {
          this.#count('aborted');
          throw error;
        }
        if (this.#closed) {
          this.#count('closed');
          throw new QueueFullError(`queue ${this.name} was closed`, {
            context: { key: this.name },
          });
        }
        if (await this.#hasRoom()) {
          await this.#add(payload, 0);
          return;
        }
      }
    } finally {
      this.#producersWaiting--;
    }
  }

  receive(options: { signal?: AbortSignal } = {}): Promise<Delivery<T> | null> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.#closed) return Promise.resolve(null);
    return new Promise<Delivery<T> | null>((resolve, reject) => {
      let dispose = (): void => {};
      const waiter: Waiter<T> = {
        done: false,
        resolve: (d) => {
          dispose();
          resolve(d);
        },
        reject: (e) => {
          dispose();
          reject(e);
        },
      };
      dispose = onAbort(signal, () => {
        if (waiter.done) return;
        waiter.done = true;
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        waiter.reject(abortError(signal!));
      });
      this.#waiters.push(waiter);
      this.#serve();
    });
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
    await this.#call(() => this.#appendDeadLetter(reason, payload, '', 0));
  }

  /** One entry of the dead-letter stream; `originalId` is '' for a message never delivered. */
  #appendDeadLetter(
    reason: string,
    payload: string,
    originalId: string,
    deliveries: number,
  ): Promise<string | null> {
    return this.#client.xadd(
      this.#o.deadLetterKey,
      '*',
      'reason',
      reason,
      'payload',
      payload,
      'originalId',
      originalId,
      'deliveries',
      String(deliveries),
    );
  }

  /** Reads back dead letters (oldest first), for operators and tests. */
  async deadLetters(count = 100): Promise<DeadLetter[]> {
    const rows = await this.#call(() =>
      this.#client.xrange(this.#o.deadLetterKey, '-', '+', 'COUNT', count),
    );
    return rows.map(([id, fields]) => {
      const f = toRecord(fields);
      return {
        id,
        reason: f.reason ?? '',
        payload: f.payload ?? '',
        originalId: f.originalId ?? '',
        deliveries: Number(f.deliveries ?? 0),
      };
    });
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
    for (const w of this.#waiters.splice(0)) {
      w.done = true;
      w.resolve(null);
    }
    // buffered entries were never handed out: they keep their earlier delivery count
    for (const entry of this.#buffer.splice(0))
      await this.#requeue(entry, priorDeliveries(entry)).catch(() => {});
    await this.#pumpDone; // a read in flight returns within blockMs; the pump hands its entries back
    const reader = this.#reader ?? (await this.#opening?.catch(() => null)) ?? null;
    this.#reader = null;
    this.#opening = null;
    reader?.disconnect();
    if (this.#started !== null && this.#inFlight.size === 0) {
      try {
        const mine = (await this.#client.xpending(
          this.#o.key,
          this.#o.group,
          '-',
          '+',
          1,
          this.#o.consumer,
        )) as unknown[];
        if (mine.length === 0)
          await this.#xgroup('DELCONSUMER', this.#o.key, this.#o.group, this.#o.consumer);
      } catch {
        // best effort: an idle consumer left in the group is harmless
      }
    }
  }

  #count(reason: string): void {
    this.#metrics.increment(MetricName.QUEUE_BACKPRESSURE, { queue: this.name, reason });
  }

  async #hasRoom(): Promise<boolean> {
    if (this.#o.capacity === Infinity) return true;
    return (await this.length()) < this.#o.capacity;
  }

  async #add(payload: string, priorDeliveries: number): Promise<void> {
    await this.#call(() =>
      this.#client.xadd(this.#o.key, '*', 'p', payload, 'd', String(priorDeliveries)),
    );
  }

  /** Hands buffered entries to waiters; starts the reader when waiters remain. */
  #serve(): void {
    while (this.#waiters.length > 0 && this.#buffer.length > 0) {
      const waiter = this.#waiters.shift()!;
      if (waiter.done) continue;
      const entry = this.#buffer.shift()!;
      waiter.done = true;
      this.#handOut(entry, waiter);
    }
    if (this.#waiters.length > 0 && !this.#pumping && !this.#closed) this.#pumpDone = this.#pump();
  }

  #handOut(entry: RawEntry, waiter: Waiter<T>): void {
    const f = toRecord(entry.fields);
    const deliveries = entry.deliveries + Number(f.d ?? 0);
    const payload = f.p;
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
        this.#refill(waiter);
        return;
      }
      message = this.#o.decode(payload);
    } catch (error) {
      const reason = isMocraError(error)
        ? `${error.code}: ${error.message}`
        : `undecodable: ${(error as Error).message}`;
      void this.#deadLetter(entry, payload ?? '', reason, deliveries);
      this.#refill(waiter);
      return;
    }
    this.#inFlight.add(entry.id);
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      this.#inFlight.delete(entry.id);
      return true;
    };
    waiter.resolve({
      id: entry.id,
      message,
      deliveries,
      ack: async () => {
        if (!settle()) return;
        await this.#call(() =>
          this.#client
            .multi()
            .xack(this.#o.key, this.#o.group, entry.id)
            .xdel(this.#o.key, entry.id)
            .exec(),
        );
      },
      release: async () => {
        if (!settle()) return;
        await this.#requeue(entry, deliveries);
      },
      deadLetter: async (reason: string) => {
        if (!settle()) return;
        this.#metrics.increment(MetricName.QUEUE_DEAD_LETTER, { queue: this.name });
        await this.#call(() => this.#moveToDeadLetters(entry.id, payload, reason, deliveries));
      },
    });
  }

  /** A waiter whose entry was dead-lettered waits for the next one. */
  #refill(waiter: Waiter<T>): void {
    waiter.done = false;
    this.#waiters.unshift(waiter);
    this.#serve();
  }

  /** Re-adds an entry with `deliveries` carried along, and removes the old one. */
  async #requeue(entry: RawEntry, deliveries: number): Promise<void> {
    const f = toRecord(entry.fields);
    await this.#call(() =>
      this.#client
        .multi()
        .xadd(this.#o.key, '*', 'p', f.p ?? '', 'd', String(deliveries))
        .xack(this.#o.key, this.#o.group, entry.id)
        .xdel(this.#o.key, entry.id)
        .exec(),
    );
  }

  async #deadLetter(
    entry: RawEntry,
    payload: string,
    reason: string,
    deliveries: number,
  ): Promise<void> {
    this.#metrics.increment(MetricName.QUEUE_DEAD_LETTER, { queue: this.name });
    try {
      await this.#moveToDeadLetters(entry.id, payload, reason, deliveries);
    } catch {
      // left pending: it will be claimed again and dead-lettered then
    }
  }

  /** Copies an entry to the dead-letter stream, then acknowledges and deletes it. */
  async #moveToDeadLetters(
    id: string,
    payload: string,
    reason: string,
    deliveries: number,
  ): Promise<void> {
    await this.#appendDeadLetter(reason, payload, id, deliveries);
    await this.#client.multi().xack(this.#o.key, this.#o.group, id).xdel(this.#o.key, id).exec();
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      await this.start();
      while (!this.#closed && this.#waiters.some((w) => !w.done)) {
        const entries = await this.#read();
        if (this.#closed) {
          for (const e of entries) await this.#requeue(e, priorDeliveries(e)).catch(() => {});
          break;
        }
        this.#buffer.push(...entries);
        this.#serve();
      }
    } catch (error) {
      const failure =
        error instanceof Error && isMocraError(error)
          ? error
          : new BackendUnavailableError(`queue ${this.name}: ${(error as Error).message}`, {
              cause: error,
            });
      for (const w of this.#waiters.splice(0)) {
        w.done = true;
        w.reject(failure);
      }
    } finally {
      this.#pumping = false;
    }
    if (!this.#closed && this.#waiters.length > 0) this.#serve();
  }

  /** Claims abandoned entries (throttled), else blocks for new ones. */
  async #read(): Promise<RawEntry[]> {
    const wanted = Math.max(1, this.#waiters.filter((w) => !w.done).length);
    const now = performance.now();
    if (now - this.#lastClaimAt >= Math.min(this.#o.claimIdleMs / 2, 1_000)) {
      this.#lastClaimAt = now;
      const claimed = await this.#claim(wanted);
      if (claimed.length > 0) return claimed;
    }
    const reader = this.#reader ?? (await this.#openReader());
    const reply = (await reader.xreadgroup(
      'GROUP',
      this.#o.group,
      this.#o.consumer,
      'COUNT',
      wanted,
      'BLOCK',
      this.#o.blockMs,
      'STREAMS',
      this.#o.key,
      '>',
    )) as [string, [string, string[]][]][] | null;
    if (!reply) return [];
    return reply.flatMap(([, rows]) => rows.map(([id, fields]) => ({ id, fields, deliveries: 1 })));
  }

  /**
   * XGROUP names its key after a subcommand, so an ioredis `Cluster` does not route it by key:
   * it goes to a random master and relies on the MOVED reply, which was seen to fail with
   * "Connection is closed." among the first commands of a new `Cluster` client (ioredis 5). On a
   * cluster it is sent to the master that owns the stream's slot instead (and through the
   * cluster client after all when that master answers MOVED or ASK: the slot has moved).
   */
  async #xgroup(...args: [string, string, ...string[]]): Promise<unknown> {
    const client = this.#client;
    if (!isCluster(client)) return client.call('XGROUP', ...args);
    const owner = client.slots[keySlot(this.#o.key)]?.[0];
    const node = client
      .nodes('master')
      .find((n) => `${n.options.host}:${n.options.port}` === owner);
    if (!node) return client.call('XGROUP', ...args);
    try {
      return await node.call('XGROUP', ...args);
    } catch (error) {
      if (/^(MOVED|ASK) /.test((error as Error).message)) return client.call('XGROUP', ...args);
      throw error;
    }
  }

  /**
   * The connection of the blocking reads: a duplicate of the client (a `Cluster` duplicates into
   * a `Cluster` of its own connections), connected before its first read so that a client made
   * with `enableOfflineQueue: false` works too.
   */
  async #openReader(): Promise<Redis | Cluster> {
    this.#opening ??= (async () => {
      const client = this.#client;
      const reader = isCluster(client)
        ? client.duplicate([], { lazyConnect: true })
        : client.duplicate({ lazyConnect: true });
      reader.on('error', () => {}); // failures reach the read that meets them
      try {
        await reader.connect();
      } catch (error) {
        reader.disconnect();
        throw error;
      }
      return reader;
    })();
    try {
      const reader = await this.#opening;
      if (this.#closed) {
        reader.disconnect();
        throw new BackendUnavailableError(`queue ${this.name} is closed`);
      }
      this.#reader = reader;
      return reader;
    } finally {
      this.#opening = null;
    }
  }

  async #claim(count: number): Promise<RawEntry[]> {
    const reply = (await this.#client.xautoclaim(
      this.#o.key,
      this.#o.group,
      this.#o.consumer,
      this.#o.claimIdleMs,
      '0-0',
      'COUNT',
      count,
    )) as [string, [string, string[] | null][], string[]?];
    const rows = reply[1].filter((r): r is [string, string[]] => Array.isArray(r[1]));
    const deleted = reply[2] ?? [];
    if (deleted.length > 0) await this.#client.xack(this.#o.key, this.#o.group, ...deleted);
    const out: RawEntry[] = [];
    for (const [id, fields] of rows) {
      const pending = (await this.#client.xpending(this.#o.key, this.#o.group, id, id, 1)) as [
        string,
        string,
        number,
        number,
      ][];
      const times = pending[0]?.[3] ?? 1;
      this.#metrics.increment(MetricName.QUEUE_RECLAIMED, { queue: this.name });
      out.push({ id, fields, deliveries: times });
    }
    return out;
  }

  async #call<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (error) {
      if (isMocraError(error)) throw error;
      const message = (error as Error).message ?? String(error);
      if (
        /ECONNREFUSED|ECONNRESET|Connection is closed|ETIMEDOUT|EPIPE|MaxRetriesPerRequest/i.test(
          message,
        )
      ) {
        throw new BackendUnavailableError(`queue ${this.name}: ${message}`, { cause: error });
      }
      throw error;
    }
  }
}

function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true;
}

function priorDeliveries(entry: RawEntry): number {
  return Number(toRecord(entry.fields).d ?? 0) + entry.deliveries - 1;
}

function toRecord(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}
