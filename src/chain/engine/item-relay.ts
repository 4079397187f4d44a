/**
 * The item relay of a deployment whose commits hand off by themselves (see stream-hand-off.ts):
 * commits add their items to the items stream; every worker reads it as one consumer group,
 * in batches, hands each item to `onItem` (item-hand-over.ts: retries, then a dead letter) and
 * acknowledges a batch in one `chain_items_ack` call, which also stops its runs waiting for
 * those items. An item whose worker died before acknowledging it is taken over (XAUTOCLAIM)
 * once it has been pending for `claimIdleMs`: handed over at least once, never lost.
 */
import { unrefInterval } from '../../internal/clock.js';
import { OUTBOX_ITEM } from './outbox.js';
import type { HandedItem } from '../state/index.js';
import { claimIdle, createGroup, reapConsumers, type RawEntry } from '../stream-commands.js';
import type { ItemHandOver } from './item-hand-over.js';
import type { StreamHandOff } from './stream-hand-off.js';
import type { EngineTelemetry } from './telemetry.js';
import type { ChainItem } from './types.js';

/** Entries read per batch. */
const BATCH = 256;
/** How often the stream is read when no commit of this process wakes the relay. */
const POLL_MS = 1_000;

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
  /** When the entries of items waiting for another try were last kept. */
  #lastKeep = -Infinity;

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
    this.wake();
  }

  /** Reads the stream soon (a commit of this process added items). */
  wake(): void {
    void this.#keepWaiting();
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
    this.#o.items.stop();
  }

  /** Resolves once the current read and its hand-overs end. */
  settled(): Promise<void> {
    return this.#idle;
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
        const readAt = performance.now();
        const entries = await this.#read();
        if (entries.length === BATCH) this.#wanted = true;
        await this.#handOver(entries, readAt);
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

  /** Items waiting for another try stay this worker's (polled about once a second). */
  async #keepWaiting(): Promise<void> {
    const now = performance.now();
    if (this.#o.items.waiting === 0 || now - this.#lastKeep < POLL_MS) return;
    this.#lastKeep = now;
    await this.#keep(this.#o.items.waitingKeys());
  }

  async #handOver(entries: RawEntry[], readAt: number): Promise<void> {
    const done: HandedItem[] = [];
    // a batch whose hand-over outlasts half of claimIdleMs keeps the rest of its entries
    const half = this.#o.handOff.items.claimIdleMs / 2;
    let keepAt = readAt + half;
    for (const [i, entry] of entries.entries()) {
      if (performance.now() > keepAt) {
        // acknowledge what was handed over so far, and keep the rest this worker's
        await this.#ack(done.splice(0));
        await this.#keep(entries.slice(i).map((e) => e.id));
        keepAt = performance.now() + half;
      }
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
        done.push({ id: entry.id, taskId: '', runId: undefined });
        continue;
      }
      const handed: HandedItem = {
        id: entry.id,
        taskId: item.taskId,
        runId: typeof item.runId === 'string' ? item.runId : undefined,
      };
      const now = await this.#o.items.handOver(entry.id, item, OUTBOX_ITEM + text, () =>
        this.#ack([handed]),
      );
      if (now) done.push(handed);
    }
    await this.#ack(done);
  }

  async #ack(entries: HandedItem[]): Promise<void> {
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
