/**
 * The item relay of a deployment whose commits hand off by themselves (see stream-hand-off.ts):
 * commits add their items to the items stream; every worker reads it as one consumer group,
 * in batches, hands the items to `onItem` (up to 16 at a time; item-hand-over.ts: retries, then
 * a dead letter) and acknowledges them in groups with `chain_items_ack`, which also stops their
 * runs waiting for them; the entries in hand are kept this worker's meanwhile (`XCLAIM …
 * JUSTID` every third of `claimIdleMs`). An item whose worker died before acknowledging it is taken over (XAUTOCLAIM)
 * once it has been pending for `claimIdleMs`: handed over at least once, never lost.
 */
import { unrefInterval } from '../../internal/clock.js';
import { OUTBOX_ITEM } from './outbox.js';
import type { HandedItem } from '../state/transitions/items-ack.js';
import { claimIdle, createGroup, reapConsumers, type RawEntry } from '../stream-commands.js';
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

/** Options of {@link ItemRelay}. @internal */
export interface ItemRelayOptions {
  handOff: StreamHandOff;
  items: ItemHandOver;
  telemetry: EngineTelemetry;
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
  readonly #held = new Set<string>();

  constructor(options: ItemRelayOptions) {
    this.#o = options;
  }

  /** Whether a read or a hand-over is under way, or an item waits for another try. */
  get busy(): boolean {
    return this.#running || this.#wanted || this.#o.items.waiting > 0;
  }

  /** Entries in the items stream (not yet handed over and acknowledged, by any worker). */
  length(): Promise<number> {
    const { client, key } = this.#o.handOff.items;
    return client.xlen(key);
  }

  /** Creates the group if missing and starts polling. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = unrefInterval(() => this.wake(), POLL_MS);
    // what this worker holds is kept its own well within claimIdleMs, however long one onItem takes
    this.#keepTimer = unrefInterval(
      () => void this.#keepHeld(),
      Math.max(10, this.#o.handOff.items.claimIdleMs / 3),
    );
    this.wake();
  }

  /** Reads the stream soon (a commit of this process added items). */
  wake(): void {
    if (this.#stopped) return;
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
    this.wake();
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
      this.#started ??= createGroup(this.#o.handOff.items);
      await this.#started;
      while (this.#wanted && !this.#stopped) {
        this.#wanted = false;
        const entries = await this.#read();
        if (entries.length === BATCH) this.#wanted = true;
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

  /** New entries, and (every half `claimIdleMs`) those a dead worker left pending. */
  async #read(): Promise<RawEntry[]> {
    const { client, key, group, consumer, claimIdleMs } = this.#o.handOff.items;
    const call = <R>(fn: () => Promise<R>): Promise<R> => fn();
    const out: RawEntry[] = [];
    const now = performance.now();
    if (now - this.#lastClaim >= claimIdleMs / 2) {
      this.#lastClaim = now;
      const taken = await claimIdle({ client, key, group }, consumer, claimIdleMs, BATCH, call);
      // an entry this process is handing over again is not taken from itself
      out.push(...taken.filter((e) => !this.#o.items.has(e.id)));
      await reapConsumers({ client, key, group }, consumer, claimIdleMs * 2).catch(() => {});
    }
    // (COUNT 0 would read every new entry)
    if (out.length >= BATCH) return out;
    const reply = (await client.xreadgroup(
      'GROUP',
      group,
      consumer,
      'COUNT',
      BATCH - out.length,
      'STREAMS',
      key,
      '>',
    )) as [string, [string, string[]][]][] | null;
    for (const [, rows] of reply ?? [])
      for (const [id, fields] of rows) out.push({ id, fields, deliveries: 1 });
    return out;
  }

  /**
   * Keeps entries this worker holds from being taken over as abandoned: resets their idle time
   * (`XCLAIM … JUSTID` to this consumer, one command for all).
   */
  async #keep(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const { client, key, group, consumer } = this.#o.handOff.items;
    await client.xclaim(key, group, consumer, 0, ...ids, 'JUSTID').catch(() => {});
  }

  /** The entries in hand and those of items waiting for another try stay this worker's. */
  async #keepHeld(): Promise<void> {
    await this.#keep([...this.#held, ...this.#o.items.waitingKeys()]);
  }

  /**
   * Hands a batch over, up to {@link LANES} items at a time (one slow `onItem` does not hold the
   * rest back); what was handed over is acknowledged soon, in groups, not at the end of the batch.
   */
  async #handOver(entries: RawEntry[]): Promise<void> {
    for (const e of entries) this.#held.add(e.id);
    const done: HandedItem[] = [];
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
  async #one(entry: RawEntry): Promise<HandedItem | null> {
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
      return { id: entry.id, taskId: '', runId: undefined };
    }
    const handed: HandedItem = {
      id: entry.id,
      taskId: item.taskId,
      runId: typeof item.runId === 'string' ? item.runId : undefined,
    };
    const now = await this.#o.items.handOver(entry.id, item, OUTBOX_ITEM + text, () =>
      this.#ack([handed]),
    );
    return now ? handed : null;
  }

  async #ack(entries: HandedItem[]): Promise<void> {
    for (const e of entries) this.#held.delete(e.id);
    if (entries.length === 0) return;
    const { state, commit } = this.#o.handOff;
    try {
      await state.ackHandedItems({
        handOff: commit,
        consumer: this.#o.handOff.items.consumer,
        entries,
      });
    } catch (error) {
      // left pending: taken over after claimIdleMs and handed over again (at least once)
      this.#o.telemetry.log('warn', 'item relay: ack failed; the items will be handed over again', {
        error: String(error),
      });
    }
  }
}
