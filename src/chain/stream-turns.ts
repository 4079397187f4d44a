/**
 * The reads of a queue on many streams (`ShardedStreamQueue`): one `XREADGROUP` cannot name
 * streams of two slots, so each read goes to one master, in turn, as one pipeline of an
 * `XREADGROUP` per stream of that master (no `BLOCK`), and the next master at once when one had
 * nothing. A stream that had nothing is read again after 5 ms, doubling up to `blockMs` (or at
 * once after `wake`), so the streams of finished tasks cost little.
 * @internal
 */
import type { Cluster, Redis } from 'ioredis';
import { claimIdle, reapConsumers, type RawEntry } from './stream-commands.js';
import { byMaster } from './task-streams.js';

/** The first wait of a stream that had nothing, in ms (doubling up to `blockMs`). */
export const FIRST_IDLE_MS = 5;

/** An entry read, with its stream. @internal */
export interface StreamEntry extends RawEntry {
  key: string;
}

/** Options of {@link StreamTurns}. @internal */
export interface StreamTurnsOptions {
  client: Redis | Cluster;
  group: string;
  consumer: string;
  /** The longest wait of a stream that had nothing. */
  blockMs: number;
  /** Runs one Redis call, bounded and classified. */
  call: <R>(fn: () => Promise<R>) => Promise<R>;
  /** A stream's group is gone (NOGROUP): it must be created again. */
  lost(key: string): void;
}

/** Reads many streams one master at a time. @internal */
export class StreamTurns {
  readonly #o: StreamTurnsOptions;
  /** Streams that had nothing: when to read each again (performance clock) and its last wait. */
  readonly #quiet = new Map<string, { until: number; ms: number }>();
  /** The master read next (an index into the masters of the streams read). */
  #turn = 0;
  /** Streams read by this consumer (it leaves their groups on shutdown). */
  readonly read = new Set<string>();

  constructor(options: StreamTurnsOptions) {
    this.#o = options;
  }

  /** `key` has entries now (this process added some): read it at the next turn. */
  wake(key: string): void {
    this.#quiet.delete(key);
  }

  /**
   * Up to about `wanted` new entries from `keys` (the streams not waiting after an empty read):
   * from the first master in turn that has any, each of its streams giving its share.
   */
  async next(keys: readonly string[], wanted: number): Promise<StreamEntry[]> {
    const now = performance.now();
    const groups = byMaster(
      this.#o.client,
      keys.filter((key) => (this.#quiet.get(key)?.until ?? 0) <= now).map((key) => ({ key })),
    );
    for (let tried = 0; tried < groups.length; tried++) {
      const group = groups[this.#turn++ % groups.length]!;
      const out = await this.#readGroup(group, Math.max(1, Math.ceil(wanted / group.length)));
      if (out.length > 0) return out;
    }
    return [];
  }

  /**
   * Takes over the deliveries of `keys` idle for `idleMs` (XAUTOCLAIM per stream, up to `count`
   * each), and with `reap` removes the consumers idle that long holding nothing.
   */
  async claim(
    keys: readonly string[],
    count: number,
    idleMs: number,
    reap: boolean,
  ): Promise<StreamEntry[]> {
    const { client, group, consumer, call } = this.#o;
    const out: StreamEntry[] = [];
    await Promise.all(
      keys.map(async (key) => {
        const place = { client, key, group };
        try {
          for (const e of await claimIdle(place, consumer, idleMs, count, call))
            out.push({ ...e, key });
          // best effort: a consumer left in the group is harmless, only untidy
          if (reap) await call(() => reapConsumers(place, consumer, idleMs)).catch(() => {});
        } catch (error) {
          if (!String((error as Error).message).includes('NOGROUP')) throw error;
        }
      }),
    );
    return out;
  }

  /** New entries of the streams of one master (one pipeline), up to `count` from each. */
  async #readGroup(group: readonly { key: string }[], count: number): Promise<StreamEntry[]> {
    const { client, consumer } = this.#o;
    const out: StreamEntry[] = [];
    const read = (key: string) =>
      client.xreadgroup('GROUP', this.#o.group, consumer, 'COUNT', count, 'STREAMS', key, '>');
    let replies: [Error | null, unknown][];
    if (group.length === 1) {
      // one stream: a command of its own (a pipeline costs more to build on a Cluster client)
      replies = [
        await this.#o
          .call(() => read(group[0]!.key))
          .then(
            (reply): [null, unknown] => [null, reply],
            (error: Error): [Error, unknown] => [error, null],
          ),
      ];
    } else {
      const pipeline = client.pipeline();
      for (const { key } of group)
        pipeline.xreadgroup('GROUP', this.#o.group, consumer, 'COUNT', count, 'STREAMS', key, '>');
      replies = (await this.#o.call(() => pipeline.exec())) ?? [];
    }
    for (const [i, { key }] of group.entries()) {
      const [error, reply] = replies[i] ?? [null, null];
      if (error) {
        if (!String(error.message).includes('NOGROUP')) throw error;
        this.#o.lost(key);
        continue;
      }
      this.read.add(key);
      const rows = reply as [string, [string, string[]][]][] | null;
      const before = out.length;
      for (const [, entries] of rows ?? [])
        for (const [id, fields] of entries) out.push({ id, fields, deliveries: 1, key });
      if (out.length > before) this.#quiet.delete(key);
      else this.#quietFor(key);
    }
    return out;
  }

  /** A stream that had nothing: its next read waits (5 ms, doubling up to `blockMs`). */
  #quietFor(key: string): void {
    const last = this.#quiet.get(key)?.ms ?? 0;
    const ms = Math.min(this.#o.blockMs, Math.max(FIRST_IDLE_MS, last * 2));
    if (this.#quiet.size >= 10_000) this.#quiet.clear();
    this.#quiet.set(key, { until: performance.now() + ms, ms });
  }
}
