/**
 * The writes of {@link RedisStreamQueue} to its stream: adds (one tick's adds batched against
 * the capacity), acks (one tick's acks in one MULTI), re-adds, dead-letter moves, and the
 * queue's dead-letter stream (appends and reads).
 * @internal
 */
import { classifyRedisError } from '../store/redis-errors.js';
import {
  appendDeadLetter,
  moveToDeadLetters,
  readDeadLetters,
  type DeadLetter,
  removeEntries,
  requeueEntry,
  type DeadLetterBound,
  type RawEntry,
  type StreamPlace,
} from './stream-commands.js';

/** A push or an ack waiting for its tick's batch. */
interface Pending<R> {
  value: string;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/** What {@link StreamWrites} needs of its queue. */
export interface StreamWritesOptions {
  /** The queue's name (the source of classified errors). */
  name: string;
  place: StreamPlace;
  capacity: number;
  deadLetterKey: string;
  bound: DeadLetterBound;
  /** Runs one Redis call, bounded and classified. */
  call: <R>(fn: () => Promise<R>) => Promise<R>;
}

/** The writes of one stream queue. */
export class StreamWrites {
  readonly #o: StreamWritesOptions;
  /** Pushes of this tick, added together. */
  #adds: Pending<boolean>[] = [];
  #addsFlushing: Promise<void> = Promise.resolve();
  #addsScheduled = false;
  /** Acks of this tick, sent together. */
  #acks: Pending<void>[] = [];
  #acksScheduled = false;

  constructor(options: StreamWritesOptions) {
    this.#o = options;
  }

  /** Entries in the stream (waiting, pending or in flight anywhere). */
  length(): Promise<number> {
    const { client, key } = this.#o.place;
    return this.#o.call(() => client.xlen(key));
  }

  /** Whether the stream holds fewer entries than the capacity. */
  async hasRoom(): Promise<boolean> {
    if (this.#o.capacity === Infinity) return true;
    return (await this.length()) < this.#o.capacity;
  }

  /** Adds `payload` (whatever the room). */
  async add(payload: string, priorDeliveries: number): Promise<void> {
    const { client, key } = this.#o.place;
    await this.#o.call(() => client.xadd(key, '*', 'p', payload, 'd', String(priorDeliveries)));
  }

  /**
   * Adds `payload` if the stream has room; false when it is full. The adds of one tick go
   * together (one after the other batch, so the bound is exact within the process): one XLEN for
   * the batch, then as many XADDs as there is room for, pipelined; the rest answer false.
   */
  tryAdd(payload: string): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#adds.push({ value: payload, resolve, reject });
      if (this.#addsScheduled) return;
      this.#addsScheduled = true;
      setImmediate(() => {
        this.#addsScheduled = false;
        this.#addsFlushing = this.#addsFlushing.then(() => this.#flushAdds());
      });
    });
  }

  /** Acknowledges (XACK + XDEL) `id` with the other acks of this tick, in one MULTI. */
  ack(id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#acks.push({ value: id, resolve, reject });
      if (this.#acksScheduled) return;
      this.#acksScheduled = true;
      setImmediate(() => {
        this.#acksScheduled = false;
        void this.#flushAcks();
      });
    });
  }

  /** Re-adds an entry with `deliveries` carried along, and removes the old one. */
  async requeue(entry: RawEntry, deliveries: number): Promise<void> {
    await this.#o.call(() => requeueEntry(this.#o.place, entry, deliveries));
  }

  /** Copies an entry to the dead-letter stream, then acknowledges and deletes it. */
  moveToDeadLetters(id: string, payload: string, reason: string, n: number): Promise<void> {
    const { place, deadLetterKey, bound } = this.#o;
    return moveToDeadLetters(place, deadLetterKey, bound, id, payload, reason, n);
  }

  /** Records `payload` (not an entry of the stream) in the dead-letter stream with `reason`. */
  async appendDeadLetter(payload: string, reason: string): Promise<void> {
    const { place, deadLetterKey, bound } = this.#o;
    await this.#o.call(() =>
      appendDeadLetter(place.client, deadLetterKey, bound, reason, payload, '', 0),
    );
  }

  /** Reads back `count` dead letters (oldest first). */
  deadLetters(count: number): Promise<DeadLetter[]> {
    const { place, deadLetterKey } = this.#o;
    return this.#o.call(() => readDeadLetters(place.client, deadLetterKey, count));
  }

  async #flushAdds(): Promise<void> {
    const batch = this.#adds.splice(0);
    if (batch.length === 0) return;
    const { place, capacity } = this.#o;
    try {
      let room = batch.length;
      if (capacity !== Infinity)
        room = Math.max(0, Math.min(room, capacity - (await this.length())));
      if (room > 0) {
        const pipeline = place.client.pipeline();
        for (let i = 0; i < room; i++)
          pipeline.xadd(place.key, '*', 'p', batch[i]!.value, 'd', '0');
        const replies = (await this.#o.call(() => pipeline.exec())) ?? [];
        for (let i = 0; i < room; i++) {
          const error = replies[i]?.[0];
          if (error)
            batch[i]!.reject(classifyRedisError(error, { source: `queue ${this.#o.name}` }));
          else batch[i]!.resolve(true);
        }
      }
      for (let i = room; i < batch.length; i++) batch[i]!.resolve(false);
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }

  async #flushAcks(): Promise<void> {
    const batch = this.#acks.splice(0);
    if (batch.length === 0) return;
    try {
      await this.#o.call(() =>
        removeEntries(
          this.#o.place,
          batch.map((p) => p.value),
        ),
      );
      for (const p of batch) p.resolve();
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }
}
