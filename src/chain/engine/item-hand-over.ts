/**
 * Handing items to `onItem`, shared by the outbox relay and the items-stream relay: at least
 * once; when `onItem` throws, the item is handed over again after a backoff while its entry
 * stays unacknowledged (leased in the outbox, pending in the items stream), and set aside as a
 * dead letter after its last try.
 */
import { unrefTimeout } from '../../internal/clock.js';
import { RetryPolicy } from '../../retry/index.js';
import type { ChainQueue } from '../queue.js';
import { setAside } from './disposition.js';
import { redactText } from './redact.js';
import type { EngineTelemetry } from './telemetry.js';
import type { ChainEngineOptions, ChainItem } from './types.js';

/** Options of {@link ItemHandOver}. @internal */
export interface ItemHandOverOptions {
  telemetry: EngineTelemetry;
  onItem: ChainEngineOptions['onItem'];
  /** Where an item never handed over is set aside (its dead-letter stream). */
  deadLetters: ChainQueue<string>;
  /**
   * Backoff of an item whose `onItem` threw, and how many times it is handed over again.
   * @defaultValue 5 times, 100 ms doubling to 5 s
   */
  itemRetry?: { policy: RetryPolicy; maxRetries: number };
  /** The secrets of a run (its login info's values), never echoed in a dead letter. @defaultValue none */
  secrets?: (runId: string) => string[];
}

/** An item whose `onItem` threw, waiting to be handed over again. */
interface Waiting {
  /** The entry as set aside should its last try fail (the outbox entry text). */
  entry: string;
  item: ChainItem;
  /** Tries so far. */
  tries: number;
  /** Called once the item is done with after a later try. */
  done: () => Promise<void>;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Hands items to `onItem` with retries. @internal */
export class ItemHandOver {
  readonly #o: ItemHandOverOptions;
  readonly #retry: { policy: RetryPolicy; maxRetries: number };
  /** Items to be handed over again, by key. */
  readonly #waiting = new Map<string, Waiting>();
  #stopped = false;

  constructor(options: ItemHandOverOptions) {
    this.#o = options;
    this.#retry = options.itemRetry ?? {
      policy: new RetryPolicy({ maxRetries: 5, initialDelayMs: 100, maxDelayMs: 5_000 }),
      maxRetries: 5,
    };
  }

  /** Items waiting for another try. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** The keys of the items waiting for another try. */
  waitingKeys(): string[] {
    return [...this.#waiting.keys()];
  }

  /** Whether the item under `key` waits for another try (its entry must not be handed out again). */
  has(key: string): boolean {
    return this.#waiting.has(key);
  }

  /**
   * Hands `item` over. True when it is done with (delivered, or set aside after its last try):
   * acknowledge its entry now. False when `onItem` threw and a try is left: it is handed over
   * again after a backoff, and `done` is called once it is done with (never after `stop()`: the
   * entry then stays unacknowledged, for another process to take).
   */
  handOver(
    key: string,
    item: ChainItem,
    entry: string,
    done: () => Promise<void>,
  ): boolean | Promise<boolean> {
    // an `onItem` that returns no promise is done with at once: no promise is made for it
    const { onItem } = this.#o;
    let ret: unknown;
    if (onItem) {
      try {
        ret = onItem(item);
      } catch (error) {
        return this.#failed(key, { entry, item, tries: 1, done, timer: undefined }, error);
      }
    }
    if (isThenable(ret)) {
      const w: Waiting = { entry, item, tries: 1, done, timer: undefined };
      return Promise.resolve(ret).then(
        () => this.#delivered(key, item),
        (error: unknown) => this.#failed(key, w, error),
      );
    }
    return this.#delivered(key, item);
  }

  /** No more tries are scheduled; items waiting stay unacknowledged. */
  stop(): void {
    this.#stopped = true;
    for (const w of this.#waiting.values()) clearTimeout(w.timer);
    this.#waiting.clear();
  }

  async #try(key: string, w: Waiting): Promise<boolean> {
    const { onItem } = this.#o;
    w.tries++;
    if (onItem) {
      try {
        await onItem(w.item);
      } catch (error) {
        return this.#failed(key, w, error);
      }
    }
    return this.#delivered(key, w.item);
  }

  /** The item was handed over. */
  #delivered(key: string, item: ChainItem): true {
    const { telemetry } = this.#o;
    if (this.#waiting.size > 0) this.#waiting.delete(key);
    telemetry.item(item);
    if (telemetry.listens('ItemProduced'))
      telemetry.emit('ItemProduced', { type: 'ItemProduced', item });
    return true;
  }

  /** `onItem` threw at try `w.tries`: set aside after the last try, else tried again later. */
  async #failed(key: string, w: Waiting, error: unknown): Promise<boolean> {
    const { telemetry } = this.#o;
    const { item } = w;
    telemetry.itemSinkError(item.moduleId);
    const message = redactText(
      `${(error as Error)?.name ?? 'Error'}: ${(error as Error)?.message ?? String(error)}`,
      this.#o.secrets?.(item.runId) ?? [],
    );
    const { policy, maxRetries } = this.#retry;
    if (w.tries > maxRetries) {
      this.#waiting.delete(key);
      await setAside(
        telemetry,
        'outbox',
        this.#o.deadLetters,
        w.entry,
        `onItem: item ${item.itemId} not handed over after ${w.tries} tries: ${message}`,
      );
      return true;
    }
    if (this.#stopped) return false; // left unacknowledged, for a process that runs on
    const delayMs = policy.delayFor(w.tries);
    telemetry.log('warn', `onItem threw; the item is handed over again in ${delayMs} ms`, {
      task_id: item.taskId,
      run_id: item.runId,
      module_id: item.moduleId,
      item_id: item.itemId,
      attempt: w.tries,
      error: message,
    });
    this.#waiting.set(key, w);
    w.timer = unrefTimeout(() => void this.#again(key, w), delayMs);
    return false;
  }

  async #again(key: string, w: Waiting): Promise<void> {
    w.timer = undefined;
    if (this.#stopped || this.#waiting.get(key) !== w) return;
    if (await this.#try(key, w)) await w.done();
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}
