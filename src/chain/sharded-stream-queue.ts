/**
 * A {@link ChainQueue} of parser messages on per-task Redis Streams (a Redis Cluster, see
 * `createRedisStreamQueues`'s `shardByTask`): each message goes to its task's stream, in the
 * task's hash tag, so it lives on the task's master beside its state and a commit can hand off
 * to it in its own script.
 *
 * - push: to the task's stream (the task read from the message; a message without one goes to
 *   the shared stream `queue(name)`, which is read too). The capacity bounds each stream.
 * - receive: the streams of the tasks active lately ({@link TaskStreams}) and the shared stream,
 *   read without blocking (XREADGROUP cannot name streams of two slots), one pipeline per master
 *   for all the streams it holds. When a read finds nothing, the next one waits (5 ms, doubling
 *   up to `blockMs`), unless this process pushes or a commit here hands off (`wake`) first.
 * - Deliveries idle for `claimIdleMs` are taken over (XAUTOCLAIM per stream), idle consumers
 *   are removed from each stream's group, dead letters go to the one dead-letter stream, like
 *   {@link RedisStreamQueue} does for its stream.
 */
import type { Cluster, Redis } from 'ioredis';
import { ClosedError, QueueFullError, isMocraError } from '../errors.js';
import { abortError } from '../internal/abort.js';
import { MetricName } from '../observe/metric-names.js';
import type { Metrics } from '../observe/metrics.js';
import { CommandDeadline } from '../store/command-deadline.js';
import { classifyRedisError } from '../store/redis-errors.js';
import type { ChainQueue, Delivery, PushOptions } from './queue.js';
import * as waiting from './queue-waiters.js';
import { DeliveryPump, streamDelivery, type StreamDeliveryQueue } from './delivery-pump.js';
import {
  createGroup,
  leaveGroupIfIdle,
  priorDeliveries,
  toRecord,
  type DeadLetter,
  type DeadLetterBound,
  type StreamPlace,
} from './stream-commands.js';
import type { StreamQueueTuning } from './stream-queue-tuning.js';
import { StreamWrites } from './stream-writes.js';
import { FIRST_IDLE_MS, StreamTurns, type StreamEntry } from './stream-turns.js';
import { taskOf, type TaskStreams } from './task-streams.js';

const where = 'ShardedStreamQueue';
type Entry = StreamEntry;

/** Options of {@link ShardedStreamQueue}. @internal */
export interface ShardedStreamQueueOptions extends Required<StreamQueueTuning> {
  client: Redis | Cluster;
  name: 'parser';
  /** The shared stream (messages without a task, and those of an earlier layout). */
  key: string;
  deadLetterKey: string;
  group: string;
  consumer: string;
  streams: TaskStreams;
}

/**
 * The parser queue of `createRedisStreamQueues` on per-task streams (`shardByTask`, the default
 * on a Redis Cluster): a {@link ChainQueue} like {@link RedisStreamQueue}, with the same
 * `shutdown()`, `length()` and `deadLetters()`.
 */
export class ShardedStreamQueue implements ChainQueue<string> {
  readonly name: string;
  readonly #o: ShardedStreamQueueOptions;
  readonly #client: Redis | Cluster;
  readonly #streams: TaskStreams;
  readonly #metrics: Metrics;
  readonly #deadline: CommandDeadline;
  readonly #bound: DeadLetterBound;
  readonly #writes = new Map<string, StreamWrites>();
  readonly #pump: DeliveryPump<string, Entry>;
  /** Deliveries in hand, by stream key + id. */
  readonly #inFlight = new Set<string>();
  readonly #deliveryQueue: StreamDeliveryQueue;
  /** The stream each delivery handed out came from. */
  readonly #from = new WeakMap<Delivery<string>, string>();
  #closed = false;
  #started: Promise<void> | null = null;
  #shutdown: Promise<void> | null = null;
  #lastClaimAt = -Infinity;
  #lastReapAt = -Infinity;
  #producersWaiting = 0;
  #idleMs = 0;
  readonly #turns: StreamTurns;
  /** The task of each task stream read lately. */
  readonly #taskByKey = new Map<string, string>();
  /** When the shared stream was last read (performance clock). */
  #lastSharedAt = -Infinity;
  #wake: (() => void) | null = null;

  /** Made by `createRedisStreamQueues` (`shardByTask`). @internal */
  constructor(options: ShardedStreamQueueOptions) {
    this.#o = options;
    this.name = options.name;
    this.#client = options.client;
    this.#streams = options.streams;
    this.#metrics = options.metrics;
    this.#deadline = new CommandDeadline(options.commandTimeoutMs);
    this.#bound = { maxLen: options.deadLetterMaxLen, maxAgeMs: options.deadLetterMaxAgeMs };
    this.#turns = new StreamTurns({
      client: options.client,
      group: options.group,
      consumer: options.consumer,
      blockMs: options.blockMs,
      call: (fn) => this.#call(fn),
      lost: (key) => this.#lostGroup(key),
    });
    this.#deliveryQueue = {
      queue: this.name,
      inFlight: this.#inFlight,
      client: this.#client,
      group: options.group,
      consumer: options.consumer,
      metrics: this.#metrics,
      call: (fn) => this.#call(fn),
    };
    this.#pump = new DeliveryPump({
      where,
      name: this.name,
      closed: () => this.#closed,
      start: () => this.start(),
      read: async (wanted) => {
        const entries = await this.#readAll(wanted);
        if (entries.length > 0) this.#idleMs = 0;
        return entries;
      },
      idle: () => this.#idle(),
      toDelivery: (entry) => this.#toDelivery(entry),
      requeue: (entry) => this.#writesOf(entry.key).requeue(entry, priorDeliveries(entry)),
    });
  }

  /** Where the streams are, for the chain engine's commit hand-off. @internal */
  get place(): {
    client: Redis | Cluster;
    key: string;
    group: string;
    consumer: string;
    capacity: number;
    claimIdleMs: number;
    streams: TaskStreams;
  } {
    const { client, key, group, consumer, capacity, claimIdleMs, streams } = this.#o;
    return { client, key, group, consumer, capacity, claimIdleMs, streams };
  }

  /** Whether `delivery` came from `taskId`'s own stream (a commit may then acknowledge it). @internal */
  fromTaskStream(delivery: Delivery<string>, taskId: string): boolean {
    return this.#from.get(delivery) === this.#streams.key(taskId, 'parser');
  }

  /** A commit of this process handed successors off to `taskId`'s stream: read it now. @internal */
  wake(taskId: string): void {
    this.#streams.active(taskId);
    this.#turns.wake(this.#streams.key(taskId, 'parser'));
    this.#idleMs = 0;
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Creates the shared stream and its group if missing. */
  start(): Promise<void> {
    this.#started ??= this.#call(() => createGroup(this.#placeOf(this.#o.key))).catch(
      (error: unknown) => {
        this.#started = null;
        throw error;
      },
    );
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

  /** Entries in the shared stream and in the streams of every task of the index. */
  async length(): Promise<number> {
    return this.#call(async () => {
      const tasks = await this.#streams.all();
      const keys = [this.#o.key, ...tasks.map((t) => this.#streams.key(t, 'parser'))];
      const lengths = await this.#streams.lengths(keys);
      return lengths.reduce((a, b) => a + b, 0);
    });
  }

  async offer(message: string): Promise<boolean> {
    if (this.#closed) {
      this.#count('closed');
      return false;
    }
    const [writes, taskId] = await this.#route(message);
    if (this.#producersWaiting > 0 || !(await writes.tryAdd(message))) {
      this.#count('full_refused');
      return false;
    }
    this.#pushed(taskId);
    return true;
  }

  async push(message: string, options?: PushOptions): Promise<void> {
    const { signal, maxWaitMs } = waiting.readPushOptions(where, options);
    if (this.#closed) {
      this.#count('closed');
      throw new ClosedError(`queue ${this.name} is closed`, { context: { key: this.name } });
    }
    if (signal?.aborted) throw abortError(signal);
    const [writes, taskId] = await this.#route(message);
    if (this.#producersWaiting === 0 && (await writes.tryAdd(message))) return this.#pushed(taskId);
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
        hasRoom: () => writes.hasRoom(),
        count: (reason) => this.#count(reason),
      });
      await writes.add(message, 0);
    } finally {
      this.#producersWaiting--;
    }
    this.#pushed(taskId);
  }

  receiveBatch(
    max: number,
    options?: { signal?: AbortSignal },
  ): Promise<Delivery<string>[] | null> {
    return this.#pump.receiveBatch(max, options);
  }

  receive(options?: { signal?: AbortSignal }): Promise<Delivery<string> | null> {
    return this.#pump.receive(options);
  }

  /** Records a message that is not a delivery of this queue in the dead-letter stream. */
  async deadLetter(message: string, reason: string): Promise<void> {
    this.#metrics.increment(MetricName.QUEUE_DEAD_LETTER, { queue: this.name });
    await this.#writesOf(this.#o.key).appendDeadLetter(message, reason);
  }

  /** Reads back dead letters (oldest first), for operators and tests. */
  async deadLetters(count = 100): Promise<DeadLetter[]> {
    return this.#writesOf(this.#o.key).deadLetters(count);
  }

  close(): void {
    void this.shutdown();
  }

  /** Like `RedisStreamQueue.shutdown`, for every stream this consumer read. Never rejects. */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#close();
    return this.#shutdown;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#pump.close();
    if (this.#inFlight.size > 0) return;
    await Promise.all(
      [...this.#turns.read].map((key) =>
        leaveGroupIfIdle(this.#placeOf(key), this.#o.consumer, (fn) => this.#call(fn)),
      ),
    );
  }

  /** The writes of the stream a message goes to (its task's; the shared one without a task). */
  async #route(message: string): Promise<[StreamWrites, string | undefined]> {
    const taskId = taskOf(message);
    if (taskId === undefined) {
      await this.start();
      return [this.#writesOf(this.#o.key), undefined];
    }
    // in the index first: a worker that reads it then finds the task
    await this.#call(() => this.#streams.touch(taskId));
    return [this.#writesOf(this.#streams.key(taskId, 'parser')), taskId];
  }

  /** A push went out: the reader looks at once (the pushed task is read from now on). */
  #pushed(taskId: string | undefined): void {
    if (taskId !== undefined) return this.wake(taskId);
    this.#lastSharedAt = -Infinity;
    this.#idleMs = 0;
  }

  #writesOf(key: string): StreamWrites {
    let writes = this.#writes.get(key);
    if (writes === undefined) {
      if (this.#writes.size >= 10_000) this.#writes.clear();
      writes = new StreamWrites({
        name: this.name,
        place: this.#placeOf(key),
        capacity: this.#o.capacity,
        deadLetterKey: this.#o.deadLetterKey,
        bound: this.#bound,
        call: (fn) => this.#call(fn),
      });
      this.#writes.set(key, writes);
    }
    return writes;
  }

  #placeOf(key: string): StreamPlace {
    return { client: this.#client, key, group: this.#o.group };
  }

  #count(reason: string): void {
    this.#metrics.increment(MetricName.QUEUE_BACKPRESSURE, { queue: this.name, reason });
  }

  #toDelivery(entry: Entry): Delivery<string> | null {
    const f = toRecord(entry.fields);
    const deliveries = entry.deliveries + Number(f.d ?? 0);
    const payload = f.p;
    const writes = this.#writesOf(entry.key);
    const moveToDeadLetters = (reason: string): Promise<void> =>
      writes.moveToDeadLetters(entry.id, payload ?? '', reason, deliveries);
    if (payload === undefined || deliveries > this.#o.maxDeliveries) {
      const reason =
        payload === undefined
          ? 'undecodable: entry has no payload field'
          : `delivered ${deliveries} times (maxDeliveries ${this.#o.maxDeliveries})`;
      this.#metrics.increment(MetricName.QUEUE_DEAD_LETTER, { queue: this.name });
      void this.#call(() => moveToDeadLetters(reason)).catch(() => {});
      return null;
    }
    const delivery = streamDelivery(this.#deliveryQueue, {
      entry,
      key: entry.key,
      message: payload,
      payload,
      deliveries,
      inFlightId: `${entry.key}\n${entry.id}`,
      writes,
    });
    this.#from.set(delivery, entry.key);
    return delivery;
  }

  /** Waits after an empty read: 5 ms, doubling up to `blockMs`, or until woken. */
  async #idle(): Promise<void> {
    this.#idleMs = Math.min(this.#o.blockMs, Math.max(FIRST_IDLE_MS, this.#idleMs * 2));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.#idleMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = null;
  }

  /** Claims abandoned entries (throttled), else reads new ones from every stream. */
  async #readAll(wanted: number): Promise<Entry[]> {
    const tasks = await this.#call(() => this.#streams.tasks());
    if (this.#taskByKey.size > 10_000) this.#taskByKey.clear();
    const keys = [this.#o.key];
    for (const t of tasks) {
      const key = this.#streams.key(t, 'parser');
      this.#taskByKey.set(key, t);
      keys.push(key);
    }
    const now = performance.now();
    if (now - this.#lastClaimAt >= Math.min(this.#o.claimIdleMs / 2, 1_000)) {
      this.#lastClaimAt = now;
      const reap = now - this.#lastReapAt >= this.#o.claimIdleMs;
      if (reap) this.#lastReapAt = now;
      const claimed = await this.#turns.claim(keys, wanted, this.#o.claimIdleMs, reap);
      if (claimed.length > 0)
        this.#metrics.increment(MetricName.QUEUE_RECLAIMED, { queue: this.name }, claimed.length);
      if (claimed.length > 0) return claimed;
    }
    // the shared stream (rarely used) once a second; the tasks' streams one master per read
    if (now - this.#lastSharedAt >= 1_000) this.#lastSharedAt = now;
    else keys.shift();
    const out = await this.#turns.next(keys, wanted);
    this.#touchRead(out, tasks);
    return out;
  }

  /** A stream whose group is gone (its key expired, then was added to): create it again. */
  #lostGroup(key: string): void {
    if (key === this.#o.key) this.#started = null;
    else {
      const taskId = this.#taskByKey.get(key);
      if (taskId !== undefined) this.#streams.lost(taskId);
    }
  }

  /** The tasks whose streams gave entries stay active in the index (for every worker). */
  #touchRead(entries: readonly Entry[], tasks: readonly string[]): void {
    if (entries.length === 0) return;
    const keys = new Set(entries.map((e) => e.key));
    for (const taskId of tasks)
      if (keys.has(this.#streams.key(taskId, 'parser')))
        this.#streams.touch(taskId).catch(() => {});
  }

  async #call<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await this.#deadline.run(fn);
    } catch (error) {
      if (isMocraError(error)) throw error;
      throw classifyRedisError(error, { source: `queue ${this.name}` });
    }
  }
}
