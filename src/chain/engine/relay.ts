/**
 * The outbox relay: a commit writes its successors, items and ErrorTaskModel to the task's
 * outbox in the same transition; the relay takes them under a lease, publishes each (messages
 * to their queue, items to `onItem`), then acknowledges what it published. An entry whose
 * relay dies in between is leased again later: published at least once, deduplicated by the
 * claim of its node (messages) or by its stable id (items).
 */
import { sleep } from '../../internal/abort.js';
import { unrefTimeout } from '../../internal/clock.js';
import type { RetryPolicy } from '../../retry/index.js';
import { normalizeMessage, type ChainInput } from '../messages.js';
import { nodeEventId, toNodeId } from '../node-id.js';
import type { ChainStateStore } from '../state/index.js';
import { setAside } from './disposition.js';
import { OUTBOX_ETM, OUTBOX_ITEM, OUTBOX_PTM, OUTBOX_RETRY } from './outbox.js';
import { redactText } from './redact.js';
import type { RetryPump } from './retry-pump.js';
import type { EngineTelemetry } from './telemetry.js';
import type { ChainEngineOptions, ChainItem, ChainQueues } from './types.js';

/** Entries taken per batch. */
const BATCH = 256;

/** Options of {@link OutboxRelay}. @internal */
export interface OutboxRelayOptions {
  state: ChainStateStore;
  queues: ChainQueues;
  /** Lease of taken entries, in ms. */
  leaseMs: number;
  telemetry: EngineTelemetry;
  onItem: ChainEngineOptions['onItem'];
  /** The retries this process watches (a published retry is no longer watched). */
  retries: Pick<RetryPump, 'watching' | 'published'>;
  /** Backoff of an item whose `onItem` threw, and how many times it is handed over again. */
  itemRetry: { policy: RetryPolicy; maxRetries: number };
  /** The secrets of a run (its login info's values), never echoed in a dead letter. */
  secrets(runId: string): string[];
}

/** An item whose `onItem` threw, waiting to be handed over again. */
interface ItemRetry {
  taskId: string;
  entry: string;
  item: ChainItem;
  /** Tries so far. */
  tries: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Publishes the outboxes of the tasks it is told about, one task at a time. @internal */
export class OutboxRelay {
  readonly #o: OutboxRelayOptions;
  readonly #dirty = new Set<string>();
  /** Items handed over again by this process, by outbox entry (their entries stay leased). */
  readonly #itemRetries = new Map<string, ItemRetry>();
  #running = false;
  #stopped = false;
  #idle: Promise<void> = Promise.resolve();

  constructor(options: OutboxRelayOptions) {
    this.#o = options;
  }

  /** Whether anything is being published or waits to be (items waiting to be handed over again included). */
  get busy(): boolean {
    return this.#running || this.#dirty.size > 0 || this.#itemRetries.size > 0;
  }

  /** Resolves once the current run (if any) ends (exposed for tests). */
  settled(): Promise<void> {
    return this.#idle;
  }

  /** Publishes the task's outbox (soon; at most one run at a time). */
  relay(taskId: string): void {
    this.#dirty.add(taskId);
    if (!this.#running) this.#idle = this.#run();
  }

  /**
   * A failing take is no longer retried; items waiting to be handed over again stay in the
   * outbox (leased, then taken again by a relay of a running process).
   */
  stop(): void {
    this.#stopped = true;
    for (const retry of this.#itemRetries.values()) clearTimeout(retry.timer);
    this.#itemRetries.clear();
  }

  async #run(): Promise<void> {
    this.#running = true;
    const { state, telemetry } = this.#o;
    try {
      while (this.#dirty.size > 0) {
        const taskId = this.#dirty.values().next().value as string;
        this.#dirty.delete(taskId);
        let entries: string[];
        // the lease runs from the take (server time); measured from before the call, locally
        const leasedUntil = performance.now() + this.#o.leaseMs * 0.8;
        try {
          entries = await state.takeOutbox(taskId, BATCH, this.#o.leaseMs);
        } catch (error) {
          telemetry.log('error', 'outbox relay: take failed; will retry', {
            task_id: taskId,
            error: String(error),
          });
          if (this.#stopped) break;
          this.#dirty.add(taskId);
          await sleep(200);
          continue;
        }
        if (entries.length === BATCH) this.#dirty.add(taskId);
        // publish, then acknowledge: an entry whose relay dies in between is leased again later
        const published: string[] = [];
        // the run of each item published: the run waits for its items before it is done
        const runs: (string | undefined)[] = [];
        for (const entry of entries) {
          if (performance.now() > leasedUntil) {
            // the lease on the rest of this batch is running out: another relay may take those
            // entries any moment, and publishing them here too would duplicate them. Leave them;
            // the next take (this relay's, right away, or another's) gets them back.
            this.#dirty.add(taskId);
            telemetry.outboxLeaseExpired();
            break;
          }
          const result = await this.#publish(entry);
          if (result === false) continue;
          published.push(entry);
          runs.push(typeof result === 'string' ? result : undefined);
        }
        try {
          await state.ackOutbox(taskId, published, runs);
        } catch (error) {
          telemetry.log('warn', 'outbox relay: ack failed; the entries will be published again', {
            task_id: taskId,
            error: String(error),
          });
        }
      }
    } finally {
      this.#running = false;
    }
  }

  /**
   * Publishes one outbox entry; false when it could not be (it stays leased, then comes back);
   * an item's run id for an item.
   */
  async #publish(entry: string): Promise<boolean | string> {
    const { queues, telemetry } = this.#o;
    const kind = entry[0];
    const body = entry.slice(1);
    if (kind === OUTBOX_PTM || kind === OUTBOX_RETRY || kind === OUTBOX_ETM) {
      const queue = kind === OUTBOX_ETM ? queues.error : queues.parser;
      try {
        await queue.push(body);
      } catch (error) {
        telemetry.log('warn', 'outbox relay: publish failed; the entry will be published again', {
          queue: queue.name,
          error: (error as Error).message,
        });
        return false;
      }
      if (kind === OUTBOX_ETM) return true;
      const source = kind === OUTBOX_RETRY ? 'retry' : 'commit';
      telemetry.parserTaskProduced(source);
      // the message is validated by its consumer; read it here only when someone needs it
      const watched = source === 'retry' && this.#o.retries.watching;
      if (!watched && !telemetry.listens('ParserTaskProduced')) return true;
      let input: ChainInput | undefined;
      try {
        input = normalizeMessage(body);
      } catch {
        input = undefined; // the consumer dead-letters it with its reason
      }
      if (input?.kind === 'parser_task') {
        if (watched) this.#o.retries.published(toNodeId(input.node), input.node.epoch ?? 0);
        telemetry.emit('ParserTaskProduced', {
          type: 'ParserTaskProduced',
          ...nodeEventId(input.node),
          source,
        });
      }
      return true;
    }
    if (kind === OUTBOX_ITEM) {
      // an item being handed over again by this process: its entry stays leased meanwhile
      if (this.#itemRetries.has(entry)) return false;
      let item: ChainItem;
      try {
        item = JSON.parse(body) as ChainItem;
      } catch {
        telemetry.deadLettered('outbox', entry, 'relay: malformed item entry');
        return true;
      }
      const done = await this.#handOver({
        taskId: item.taskId,
        entry,
        item,
        tries: 0,
        timer: undefined,
      });
      // a run waits for its items: the ack counts this one done with in its run
      return done && typeof item.runId === 'string' ? item.runId : done;
    }
    await setAside(telemetry, 'outbox', queues.parser, entry, 'relay: unknown outbox entry');
    return true;
  }

  /**
   * Hands an item to `onItem`. True when it is done with (delivered, or dead-lettered after its
   * last try): its entry may be acknowledged. False when `onItem` threw and a try is left: the
   * entry stays leased in the outbox while this process hands the item over again after a
   * backoff (and acknowledges it then); should this process die, the lease runs out and the
   * entry is taken again — at least once, never lost.
   */
  async #handOver(retry: ItemRetry): Promise<boolean> {
    const { telemetry, onItem } = this.#o;
    const { item } = retry;
    retry.tries++;
    if (onItem) {
      try {
        await onItem(item);
      } catch (error) {
        telemetry.itemSinkError(item.moduleId);
        const message = redactText(
          `${(error as Error)?.name ?? 'Error'}: ${(error as Error)?.message ?? String(error)}`,
          this.#o.secrets(item.runId),
        );
        const { policy, maxRetries } = this.#o.itemRetry;
        if (retry.tries > maxRetries) {
          this.#itemRetries.delete(retry.entry);
          await setAside(
            telemetry,
            'outbox',
            this.#o.queues.parser,
            retry.entry,
            `onItem: item ${item.itemId} not handed over after ${retry.tries} tries: ${message}`,
          );
          return true;
        }
        if (this.#stopped) return false; // left in the outbox, for a relay that runs on
        const delayMs = policy.delayFor(retry.tries);
        telemetry.log('warn', `onItem threw; the item is handed over again in ${delayMs} ms`, {
          task_id: item.taskId,
          run_id: item.runId,
          module_id: item.moduleId,
          item_id: item.itemId,
          attempt: retry.tries,
          error: message,
        });
        this.#itemRetries.set(retry.entry, retry);
        retry.timer = unrefTimeout(() => void this.#again(retry), delayMs);
        return false;
      }
    }
    this.#itemRetries.delete(retry.entry);
    telemetry.item(item);
    telemetry.emit('ItemProduced', { type: 'ItemProduced', item });
    return true;
  }

  /** The next try of an item; its entry is acknowledged once it is done with. */
  async #again(retry: ItemRetry): Promise<void> {
    retry.timer = undefined;
    if (this.#stopped || this.#itemRetries.get(retry.entry) !== retry) return;
    if (!(await this.#handOver(retry))) return;
    try {
      await this.#o.state.ackOutbox(retry.taskId, [retry.entry], [retry.item.runId]);
    } catch (error) {
      this.#o.telemetry.log(
        'warn',
        'outbox relay: ack failed; the item will be handed over again',
        {
          task_id: retry.taskId,
          error: String(error),
        },
      );
    }
  }
}
