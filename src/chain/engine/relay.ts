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
import { nodeEventId, toNodeId, type NodeEventId } from '../node-id.js';
import type { ChainStateStore } from '../state/index.js';
import { setAside } from './disposition.js';
import { FairShare } from './fair-share.js';
import { ItemHandOver } from './item-hand-over.js';
import { OUTBOX_ETM, OUTBOX_ITEM, OUTBOX_PTM, OUTBOX_RETRY } from './outbox.js';
import type { RetryPump } from './retry-pump.js';
import type { EngineTelemetry } from './telemetry.js';
import type { ChainEngineOptions, ChainItem, ChainQueues } from './types.js';

/** Entries taken per batch. */
const BATCH = 256;
/**
 * Most message entries being pushed at once, over all batches: the take loop goes on (and
 * hands the items of later commits over) while earlier messages wait for room in their queue,
 * until this many are outstanding.
 */
const MAX_PUSHING = 4 * BATCH;

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
  /**
   * Backoff of an item whose `onItem` threw, and how many times it is handed over again.
   * @defaultValue 5 times, 100 ms doubling to 5 s
   */
  itemRetry?: { policy: RetryPolicy; maxRetries: number };
  /** The secrets of a run (its login info's values), never echoed in a dead letter. @defaultValue none */
  secrets?: (runId: string) => string[];
}

/**
 * Publishes the outboxes of the tasks it is told about. One take loop leases batches and hands
 * their items to `onItem` at once; their messages are pushed concurrently, in the background,
 * so neither a slow queue (back-pressure from busy consumers) nor one round trip per message
 * holds the items of later commits back. @internal
 */
export class OutboxRelay {
  readonly #o: OutboxRelayOptions;
  readonly #dirty = new Set<string>();
  /** Hands items over (again, after a backoff: their entries stay leased meanwhile). */
  readonly #items: ItemHandOver;
  readonly #pushes = new Set<Promise<void>>();
  #pushing = 0;
  readonly #retryTimers = new Set<ReturnType<typeof setTimeout>>();
  #running = false;
  #stopped = false;
  #idle: Promise<void> = Promise.resolve();

  constructor(options: OutboxRelayOptions) {
    this.#o = options;
    this.#items = new ItemHandOver({
      telemetry: options.telemetry,
      onItem: options.onItem,
      deadLetters: options.queues.parser,
      ...(options.itemRetry === undefined ? {} : { itemRetry: options.itemRetry }),
      ...(options.secrets === undefined ? {} : { secrets: options.secrets }),
    });
  }

  /** Whether anything is being published or waits to be (items waiting to be handed over again included). */
  get busy(): boolean {
    return (
      this.#running ||
      this.#dirty.size > 0 ||
      this.#pushes.size > 0 ||
      this.#retryTimers.size > 0 ||
      this.#items.waiting > 0
    );
  }

  /** Resolves once the current run (if any) and the pushes it started end (exposed for tests). */
  async settled(): Promise<void> {
    await this.#idle;
    while (this.#pushes.size > 0) await Promise.all(this.#pushes);
  }

  /** Publishes the task's outbox (now: call it on every commit; at most one take loop runs). */
  relay(taskId: string): void {
    this.#dirty.add(taskId);
    if (!this.#running) this.#idle = this.#run();
  }

  /**
   * A failing take is no longer retried; no publication is scheduled again; items waiting to be
   * handed over again stay in the outbox (leased, then taken again by a relay of a running
   * process).
   */
  stop(): void {
    this.#stopped = true;
    this.#items.stop();
    for (const timer of this.#retryTimers) clearTimeout(timer);
    this.#retryTimers.clear();
  }

  async #run(): Promise<void> {
    this.#running = true;
    const { state, telemetry } = this.#o;
    const fair = new FairShare();
    try {
      while (this.#dirty.size > 0) {
        if (this.#pushing >= MAX_PUSHING) {
          await Promise.race(this.#pushes);
          continue;
        }
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
        // items (and anything else that is not a message) first, at once; messages after, in
        // the background. An entry whose relay dies before its ack is leased again later.
        const messages: string[] = [];
        const handed: string[] = [];
        // the run of each item handed over: the run waits for its items before it is done
        const runs: (string | undefined)[] = [];
        for (const entry of entries) {
          if (isMessage(entry)) {
            messages.push(entry);
            continue;
          }
          if (performance.now() > leasedUntil) {
            this.#leaseRunningOut(taskId);
            break;
          }
          // an item whose `onItem` returns no promise is handed over without one
          const published = this.#publish(entry, leasedUntil);
          const result = published instanceof Promise ? await published : published;
          if (result !== false) {
            handed.push(entry);
            runs.push(typeof result === 'string' ? result : undefined);
          }
          if (fair.due()) await fair.yield(); // an in-process outbox and queue publish without I/O
        }
        if (handed.length > 0) await this.#ack(taskId, handed, runs);
        if (messages.length > 0) this.#pushAll(taskId, messages, leasedUntil);
      }
    } finally {
      this.#running = false;
    }
  }

  /**
   * The lease on the rest of a batch is running out: another relay may take those entries any
   * moment, and publishing them here too would duplicate them. Leave them; the next take (this
   * relay's, right away, or another's) gets them back.
   */
  #leaseRunningOut(taskId: string): void {
    this.#dirty.add(taskId);
    this.#o.telemetry.outboxLeaseExpired();
  }

  /** Pushes a batch's messages concurrently, then acknowledges those that went out. */
  #pushAll(taskId: string, messages: string[], leasedUntil: number): void {
    this.#pushing += messages.length;
    const done = (async () => {
      const sent = await Promise.all(messages.map((m) => this.#publish(m, leasedUntil)));
      const published = messages.filter((_, i) => sent[i]);
      if (published.length > 0) await this.#ack(taskId, published);
      // what could not be pushed stays leased: take it again once its lease has run out
      if (published.length < messages.length) this.#retryAfterLease(taskId);
    })();
    this.#pushes.add(done);
    void done.finally(() => {
      this.#pushing -= messages.length;
      this.#pushes.delete(done);
    });
  }

  /** Relays the task again once the lease of entries it could not publish has run out. */
  #retryAfterLease(taskId: string): void {
    if (this.#stopped) return;
    const timer = unrefTimeout(() => {
      this.#retryTimers.delete(timer);
      if (!this.#stopped) this.relay(taskId);
    }, this.#o.leaseMs);
    this.#retryTimers.add(timer);
  }

  async #ack(
    taskId: string,
    entries: string[],
    runs?: readonly (string | undefined)[],
  ): Promise<void> {
    try {
      await this.#o.state.ackOutbox(taskId, entries, runs);
    } catch (error) {
      this.#o.telemetry.log(
        'warn',
        'outbox relay: ack failed; the entries will be published again',
        { task_id: taskId, error: String(error) },
      );
    }
  }

  /**
   * Publishes one outbox entry; false when it could not be (it stays leased, then comes back);
   * an item's run id for an item.
   */
  #publish(entry: string, leasedUntil: number): boolean | string | Promise<boolean | string> {
    const kind = entry[0];
    if (kind === OUTBOX_ITEM) return this.#publishItem(entry);
    return this.#publishOther(entry, leasedUntil);
  }

  /** Publishes a message entry (or sets aside an unknown one). */
  async #publishOther(entry: string, leasedUntil: number): Promise<boolean> {
    const { queues, telemetry } = this.#o;
    const kind = entry[0];
    const body = entry.slice(1);
    if (kind === OUTBOX_PTM || kind === OUTBOX_RETRY || kind === OUTBOX_ETM) {
      const queue = kind === OUTBOX_ETM ? queues.error : queues.parser;
      try {
        // wait for room no longer than the lease: past it, another relay may publish it too
        await queue.push(body, { maxWaitMs: Math.max(0, leasedUntil - performance.now()) });
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
      if (!watched) {
        // only for the event: the engine wrote this message itself (its consumer validates it)
        const id = producedNode(body);
        if (id !== undefined)
          telemetry.emit('ParserTaskProduced', { type: 'ParserTaskProduced', ...id, source });
        return true;
      }
      let input: ChainInput | undefined;
      try {
        input = normalizeMessage(body);
      } catch {
        input = undefined; // the consumer dead-letters it with its reason
      }
      if (input?.kind === 'parser_task') {
        this.#o.retries.published(toNodeId(input.node), input.node.epoch ?? 0);
        telemetry.emit('ParserTaskProduced', {
          type: 'ParserTaskProduced',
          ...nodeEventId(input.node),
          source,
        });
      }
      return true;
    }
    await setAside(telemetry, 'outbox', queues.parser, entry, 'relay: unknown outbox entry');
    return true;
  }

  /**
   * Hands an item entry over: its run id once done with (true for an item without one), false
   * while it waits for another try; synchronous when `onItem` returns no promise.
   */
  #publishItem(entry: string): boolean | string | Promise<boolean | string> {
    // an item being handed over again by this process: its entry stays leased meanwhile
    if (this.#items.waiting > 0 && this.#items.has(entry)) return false;
    let item: ChainItem;
    try {
      item = JSON.parse(entry.slice(1)) as ChainItem;
    } catch {
      this.#o.telemetry.deadLettered('outbox', entry, 'relay: malformed item entry');
      return true;
    }
    const done = this.#items.handOver(entry, item, entry, () =>
      this.#ackLater(item.taskId, entry, item.runId),
    );
    // a run waits for its items: the ack counts this one done with in its run
    const runOf = (d: boolean): boolean | string =>
      d && typeof item.runId === 'string' ? item.runId : d;
    return done instanceof Promise ? done.then(runOf) : runOf(done);
  }

  /** Acknowledges an item handed over after a later try. */
  async #ackLater(taskId: string, entry: string, runId: string): Promise<void> {
    try {
      await this.#o.state.ackOutbox(taskId, [entry], [runId]);
    } catch (error) {
      this.#o.telemetry.log(
        'warn',
        'outbox relay: ack failed; the item will be handed over again',
        {
          task_id: taskId,
          error: String(error),
        },
      );
    }
  }
}

/** Whether an outbox entry is a message for a queue (pushed) rather than an item (handed over). */
function isMessage(entry: string): boolean {
  const kind = entry[0];
  return kind === OUTBOX_PTM || kind === OUTBOX_RETRY || kind === OUTBOX_ETM;
}

/**
 * The node of a ParserTaskModel message, read for its `ParserTaskProduced` event only (no
 * validation beyond the fields the event carries); undefined when it is not one.
 */
function producedNode(body: string): NodeEventId | undefined {
  let node: Partial<NodeEventId> | undefined;
  try {
    const message = JSON.parse(body) as { kind?: unknown; body?: Partial<NodeEventId> } | null;
    if (message?.kind !== 'parser_task') return undefined;
    node = message.body;
  } catch {
    return undefined; // the consumer dead-letters it with its reason
  }
  if (
    typeof node?.taskId !== 'string' ||
    typeof node.runId !== 'string' ||
    typeof node.moduleId !== 'string' ||
    typeof node.stepIdx !== 'number' ||
    typeof node.prefixRequest !== 'string'
  )
    return undefined;
  return {
    taskId: node.taskId,
    runId: node.runId,
    moduleId: node.moduleId,
    stepIdx: node.stepIdx,
    prefixRequest: node.prefixRequest,
  };
}
