/**
 * The retry pump: node retries this process scheduled wait in the state machine's retry set
 * until due; the pump polls for them, moves the due ones into their task's outbox (once,
 * whoever polls: `promoteDueRetries`) and has the relay publish them.
 */
import { unrefTimeout } from '../../internal/clock.js';
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { NodeId } from '../node-id.js';
import type { ChainStateStore } from '../state/index.js';
import type { LogLevel } from './telemetry.js';
import type { LogFields } from '../../observe/logger.js';

/** Options of {@link RetryPump}. @internal */
export interface RetryPumpOptions {
  state: ChainStateStore;
  keys: ChainKeyBuilder;
  /** How often due retries are looked for, in ms. */
  pollMs: number;
  /** With shared queues, a retry this long past due is no longer watched (another worker may have published it). */
  forgetAfterMs: number;
  /** Queues shared with other processes. */
  sharedQueues: boolean;
  /** Publishes a task's outbox. */
  relay(taskId: string): void;
  log(level: LogLevel, message: string, fields: LogFields): void;
}

/** Polls for the due node retries this process scheduled. @internal */
export class RetryPump {
  readonly #o: RetryPumpOptions;
  /** Retries scheduled and not seen published: task → (node@attempt → due, performance.now() ms). */
  readonly #pending = new Map<string, Map<string, number>>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #stopped = false;

  constructor(options: RetryPumpOptions) {
    this.#o = options;
  }

  /** Whether a poll is running. */
  get running(): boolean {
    return this.#running;
  }

  /** Whether any retry this process scheduled has not been seen published. */
  get watching(): boolean {
    return this.#pending.size > 0;
  }

  /**
   * Watches a retry scheduled in `delayMs` and makes sure a poll comes. Returns false when this
   * retry was already watched (a duplicate ErrorTaskModel).
   */
  scheduled(node: NodeId, attempt: number, delayMs: number): boolean {
    const pending = this.#pending.get(node.taskId) ?? new Map<string, number>();
    const before = pending.size;
    pending.set(`${this.#o.keys.ptmKey(node)}@${attempt}`, performance.now() + delayMs);
    this.#pending.set(node.taskId, pending);
    this.schedule(delayMs);
    return pending.size > before;
  }

  /** A retry message (of `node` at `epoch`) was published: stop watching it. */
  published(node: NodeId, epoch: number): void {
    const pending = this.#pending.get(node.taskId);
    if (!pending) return;
    pending.delete(`${this.#o.keys.ptmKey(node)}@${epoch}`);
    if (pending.size === 0) this.#pending.delete(node.taskId);
  }

  /** Makes sure a poll runs within about `delayMs` (at least the poll interval, at most 1 s). */
  schedule(delayMs: number): void {
    if (this.#stopped) return;
    const wait = Math.max(this.#o.pollMs, Math.min(delayMs, 1000));
    if (this.#timer !== undefined || this.#running) return;
    this.#timer = unrefTimeout(() => {
      this.#timer = undefined;
      void this.poll();
    }, wait);
  }

  /** Promotes the due retries of every watched task (exposed for tests). */
  async poll(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      const now = performance.now();
      for (const [taskId, pending] of [...this.#pending]) {
        await this.promote(taskId);
        if (this.#o.sharedQueues) {
          // another worker (or the sweep) may have promoted and published it: stop watching a
          // retry well past its due time; the store keeps it until it is published
          for (const [key, due] of pending)
            if (now - due > this.#o.forgetAfterMs) pending.delete(key);
          if (pending.size === 0) this.#pending.delete(taskId);
        }
      }
    } finally {
      this.#running = false;
    }
    if (this.#pending.size > 0) this.schedule(this.#o.pollMs);
  }

  /** Moves the task's due retries into its outbox (once, whoever polls) and relays them. */
  async promote(taskId: string): Promise<void> {
    let due: string[];
    try {
      due = await this.#o.state.promoteDueRetries(taskId, 256);
    } catch (error) {
      this.#o.log('error', 'retry pump: promotion failed; will retry', {
        task_id: taskId,
        error: String(error),
      });
      return;
    }
    if (due.length > 0) this.#o.relay(taskId);
  }

  /** No more polls; retries not yet due stay in the store (any worker's sweep promotes them). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}
