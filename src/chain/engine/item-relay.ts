/**
 * The item relay of a deployment whose commits hand off by themselves (see stream-hand-off.ts):
 * commits add their items to the items stream (with per-task streams on a Cluster, their task's
 * items stream); every worker reads it as one consumer group,
 * in batches, hands the items to `onItem` (up to 16 at a time; item-hand-over.ts: retries, then
 * a dead letter) and acknowledges them in groups with `chain_items_ack`, which also stops their
 * runs waiting for them; the entries in hand are kept this worker's meanwhile (`XCLAIM …
 * JUSTID` every third of `claimIdleMs`). An item whose worker died before acknowledging it is taken over (XAUTOCLAIM)
 * once it has been pending for `claimIdleMs`: handed over at least once, never lost. Per-task
 * streams are those of the tasks active lately (`TaskStreams`), read one pipeline per master;
 * a commit here wakes the relay for its task's stream alone.
 */
import { unrefInterval } from '../../internal/clock.js';
import { OUTBOX_ITEM } from './outbox.js';
import type { HandedItem } from '../state/transitions/items-ack.js';
import { claimIdle, createGroup, reapConsumers, type RawEntry } from '../stream-commands.js';
import { byMaster } from '../task-streams.js';
import type { ItemHandOver } from './item-hand-over.js';
import type { StreamHandOff } from './stream-hand-off.js';
import type { EngineTelemetry } from './telemetry.js';
import type { ChainItem } from './types.js';

/** Entries read per batch. */
const BATCH = 256;
/** How often the stream is read when no commit of this process wakes the relay. */
const POLL_MS = 1_000;
/** Items of a batch handed over at a time. */
const LANES = 16;
/** Items handed over are acknowledged in groups of this many … */
const ACK_GROUP = 64;
/** … or once this long has passed since the last acknowledgement. */
const ACK_EVERY_MS = 200;

/** An entry of an items stream, with its stream. */
interface Entry extends RawEntry {
  key: string;
}

/** The key of an entry among those of every stream (ids are per stream). */
function uid(e: { key: string; id: string }): string {
  return `${e.key}\n${e.id}`;
}

/** Options of {@link ItemRelay}. @internal */
export interface ItemRelayOptions {
  handOff: StreamHandOff;
  items: ItemHandOver;
  telemetry: EngineTelemetry;
}

/** An item handed over, with its stream. */
interface Handed extends HandedItem {
  key: string;
}

/** Reads the items stream and hands its items over. @internal */
export class ItemRelay {
  readonly #o: ItemRelayOptions;
  #wanted = false;
  #running = false;
  #stopped = false;
  #idle: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | undefined;
  #started: Promise<void> | undefined;
  /** When idle entries were last taken over (ms, performance clock). */
  #lastClaim = -Infinity;
  #keepTimer: ReturnType<typeof setInterval> | undefined;
  /** Entries of the batch in hand not yet acknowledged (kept this worker's by the keep timer). */
  readonly #held = new Map<string, Entry>();
  /** Entries of items waiting for another try, by uid. */
  readonly #retrying = new Map<string, Entry>();
  /** Tasks whose items stream a commit here added to: read those alone (per-task streams). */
  readonly #woken = new Set<string>();
  /** The task of each per-task items stream read lately. */
  readonly #taskByKey = new Map<string, string>();
  /** Whether the next read looks at every stream (a poll), not only those of `#woken`. */
  #everyStream = true;

  constructor(options: ItemRelayOptions) {
    this.#o = options;
  }

  /** Whether a read or a hand-over is under way, or an item waits for another try. */
  get busy(): boolean {
    return this.#running || this.#wanted || this.#o.items.waiting > 0;
  }

  /** Entries in the items stream(s) (not yet handed over and acknowledged, by any worker). */
  async length(): Promise<number> {
    const { client, key, streams } = this.#o.handOff.items;
    if (streams === undefined) return client.xlen(key);
    const tasks = await streams.all();
    const lengths = await streams.lengths(tasks.map((t) => streams.key(t, 'items')));
    return lengths.reduce((a, b) => a + b, 0);
  }

  /** Creates the group if missing and starts polling. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = unrefInterval(() => this.#poll(), POLL_MS);
    // what this worker holds is kept its own well within claimIdleMs, however long one onItem takes
    this.#keepTimer = unrefInterval(
      () => void this.#keepHeld(),
      Math.max(10, this.#o.handOff.items.claimIdleMs / 3),
    );
    this.#poll();
  }

  /** Reads every stream soon. */
  #poll(): void {
    this.#everyStream = true;
    this.wake();
  }

  /** Reads the stream soon (a commit of this process added items; with per-task streams, to `taskId`'s). */
  wake(taskId?: string): void {
    if (this.#stopped) return;
    if (taskId !== undefined) this.#woken.add(taskId);
    this.#wanted = true;
    if (!this.#running) this.#idle = this.#run();
  }

  /** Stops polling (a stopping engine reads once more with {@link ItemRelay.flush}). */
  pause(): void {
    clearInterval(this.#timer);
  }

  /** Reads until the stream has nothing new (the items of this process's last commits). */
  async flush(): Promise<void> {
    if (this.#stopped) return;
    this.#poll();
    while (this.#running) await this.#idle;
  }

  /** Stops reading; items waiting for another try stay pending for another worker. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    clearInterval(this.#keepTimer);
    this.#o.items.stop();
  }

  async #run(): Promise<void> {
    this.#running = true;
    // one read per tick, whatever the number of commits that woke the relay in it
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      const { items } = this.#o.handOff;
      if (items.streams === undefined) {
        this.#started ??= createGroup(items);
        await this.#started;
      }
      while (this.#wanted && !this.#stopped) {
        this.#wanted = false;
        const entries = await this.#read();
        if (entries.length >= BATCH) this.#wanted = true;
        await this.#handOver(entries);
      }
    } catch (error) {
      this.#started = undefined;
      this.#o.telemetry.log('warn', 'item relay: read failed; will retry', {
        error: String(error),
      });
    } finally {
      this.#running = false;
    }
  }

  /** The streams to read now: the one stream, or the per-task streams to look at. */
  async #keys(): Promise<string[]> {
    const { key, streams } = this.#o.handOff.items;
    if (streams === undefined) return [key];
    const woken = [...this.#woken];
    this.#woken.clear();
    let tasks = woken;
    if (this.#everyStream) {
      this.#everyStream = false;
      tasks = [...new Set([...woken, ...(await streams.tasks())])];
    } else await Promise.all(tasks.map((t) => streams.groups(t)));
    if (this.#taskByKey.size > 10_000) this.#taskByKey.clear();
    return tasks.map((t) => {
      const key = streams.key(t, 'items');
      this.#taskByKey.set(key, t);
      return key;
    });
  }

  /** New entries, and (every half `claimIdleMs`) those a dead worker left pending. */
  async #read(): Promise<Entry[]> {
    const { client, group, consumer, claimIdleMs, streams } = this.#o.handOff.items;
    const call = <R>(fn: () => Promise<R>): Promise<R> => fn();
    const out: Entry[] = [];
    const now = performance.now();
    if (now - this.#lastClaim >= claimIdleMs / 2) {
      this.#lastClaim = now;
      this.#everyStream = true;
      const every = await this.#keys();
      for (const key of every) {
        try {
          const taken = await claimIdle({ client, key, group }, consumer, claimIdleMs, BATCH, call);
          // an entry this process is handing over again is not taken from itself
          for (const e of taken)
            if (!this.#o.items.has(uid({ key, id: e.id }))) out.push({ ...e, key });
          await reapConsumers({ client, key, group }, consumer, claimIdleMs * 2).catch(() => {});
        } catch (error) {
          if (streams === undefined || !String((error as Error).message).includes('NOGROUP'))
            throw error;
        }
      }
      if (out.length >= BATCH) return out;
      return this.#readNew(every, out);
    }
    return this.#readNew(await this.#keys(), out);
  }

  /** New entries of `keys` (each stream's share of a batch), one pipeline per master. */
  async #readNew(keys: readonly string[], out: Entry[]): Promise<Entry[]> {
    const { client, group, consumer, streams } = this.#o.handOff.items;
    if (keys.length === 0) return out;
    // (COUNT 0 would read every new entry)
    const count = Math.max(1, Math.ceil((BATCH - out.length) / keys.length));
    await Promise.all(
      byMaster(
        client,
        keys.map((key) => ({ key })),
      ).map(async (part) => {
        const pipeline = client.pipeline();
        for (const { key } of part)
          pipeline.xreadgroup('GROUP', group, consumer, 'COUNT', count, 'STREAMS', key, '>');
        const replies = (await pipeline.exec()) ?? [];
        for (const [i, { key }] of part.entries()) {
          const [error, reply] = replies[i] ?? [null, null];
          if (error) {
            if (streams === undefined || !String(error.message).includes('NOGROUP')) throw error;
            const taskId = this.#taskOf(key);
            if (taskId !== undefined) streams.lost(taskId);
            continue;
          }
          const rows = reply as [string, [string, string[]][]][] | null;
          for (const [, entries] of rows ?? [])
            for (const [id, fields] of entries) out.push({ id, fields, deliveries: 1, key });
        }
      }),
    );
    if (streams !== undefined)
      for (const key of new Set(out.map((e) => e.key))) {
        const taskId = this.#taskOf(key);
        if (taskId !== undefined) streams.touch(taskId).catch(() => {});
      }
    return out;
  }

  /** The task of a per-task items stream read lately. */
  #taskOf(key: string): string | undefined {
    return this.#taskByKey.get(key);
  }

  /**
   * Keeps entries this worker holds from being taken over as abandoned: resets their idle time
   * (`XCLAIM … JUSTID` to this consumer, one command for all).
   */
  async #keep(entries: readonly Entry[]): Promise<void> {
    const { client, group, consumer } = this.#o.handOff.items;
    const byKey = new Map<string, string[]>();
    for (const e of entries) {
      let ids = byKey.get(e.key);
      if (ids === undefined) byKey.set(e.key, (ids = []));
      ids.push(e.id);
    }
    await Promise.all(
      [...byKey].map(([key, ids]) =>
        client.xclaim(key, group, consumer, 0, ...ids, 'JUSTID').catch(() => {}),
      ),
    );
  }

  /** The entries in hand and those of items waiting for another try stay this worker's. */
  async #keepHeld(): Promise<void> {
    const waiting = new Set(this.#o.items.waitingKeys());
    for (const u of this.#retrying.keys()) if (!waiting.has(u)) this.#retrying.delete(u);
    await this.#keep([...this.#held.values(), ...this.#retrying.values()]);
  }

  /**
   * Hands a batch over, up to {@link LANES} items at a time (one slow `onItem` does not hold the
   * rest back); what was handed over is acknowledged soon, in groups, not at the end of the batch.
   */
  async #handOver(entries: Entry[]): Promise<void> {
    for (const e of entries) this.#held.set(uid(e), e);
    const done: Handed[] = [];
    let ackAt = performance.now() + ACK_EVERY_MS;
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < entries.length) {
        const handed = await this.#one(entries[next++]!);
        if (handed) done.push(handed);
        if (done.length >= ACK_GROUP || performance.now() > ackAt) {
          ackAt = performance.now() + ACK_EVERY_MS;
          await this.#ack(done.splice(0));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LANES, entries.length) }, lane));
    await this.#ack(done.splice(0));
  }

  /** Hands one entry's item over; the entry to acknowledge now, or null (handed over later). */
  async #one(entry: Entry): Promise<Handed | null> {
    const at = entry.fields.indexOf('p');
    const text = at >= 0 ? entry.fields[at + 1] : undefined;
    let item: ChainItem;
    try {
      item = JSON.parse(text ?? '') as ChainItem;
    } catch {
      this.#o.telemetry.deadLettered(
        'outbox',
        OUTBOX_ITEM + (text ?? ''),
        'relay: malformed item entry',
      );
      return { id: entry.id, taskId: '', runId: undefined, key: entry.key };
    }
    const handed: Handed = {
      id: entry.id,
      taskId: item.taskId,
      runId: typeof item.runId === 'string' ? item.runId : undefined,
      key: entry.key,
    };
    const now = await this.#o.items.handOver(uid(entry), item, OUTBOX_ITEM + text, () =>
      this.#ack([handed]),
    );
    if (!now) this.#retrying.set(uid(entry), entry);
    return now ? handed : null;
  }

  async #ack(entries: Handed[]): Promise<void> {
    for (const e of entries) {
      this.#held.delete(uid(e));
      this.#retrying.delete(uid(e));
    }
    if (entries.length === 0) return;
    const { state, commit, items } = this.#o.handOff;
    // one ack per stream (a per-task stream and its runs are in one slot)
    const byKey = new Map<string, HandedItem[]>();
    for (const { key, ...e } of entries) {
      let list = byKey.get(key);
      if (list === undefined) byKey.set(key, (list = []));
      list.push(e);
    }
    try {
      await Promise.all(
        [...byKey].map(([key, list]) =>
          state.ackHandedItems({
            handOff: {
              items: items.streams === undefined ? commit.items : items.storeKey(key),
              group: commit.group,
            },
            entries: list,
          }),
        ),
      );
    } catch (error) {
      // left pending: taken over after claimIdleMs and handed over again (at least once)
      this.#o.telemetry.log('warn', 'item relay: ack failed; the items will be handed over again', {
        error: String(error),
      });
    }
  }
}
