/**
 * The sweeper (shared queues, or a durable store): one process at a time (a lock) visits the
 * recently active tasks, promotes their due retries and relays their outboxes — what a process
 * that died left behind (a commit it did not relay, outbox entries whose lease ran out, retries
 * it would have pumped) goes on. A node a dead process held needs no sweep: the queue delivers
 * its message again (a stream's idle claim, a durable queue's visibility lease, a volatile
 * queue's hand-off record on `start()`), and the claim takes over the expired lease.
 * On a durable store, `start()` of a new process begins with one round over every task the
 * store still holds: the resume.
 */
import { unrefTimeout } from '../../internal/clock.js';
import type { ChainStateStore } from '../state/index.js';
import type { EngineTelemetry } from './telemetry.js';

/** Options of {@link Sweeper}. @internal */
export interface SweeperOptions {
  state: ChainStateStore;
  /** The lock owner. */
  workerId: string;
  /** Time between rounds, in ms. */
  intervalMs: number;
  /** Tasks active within this window (ms) are swept. */
  windowMs: number;
  /** Sweep at all (only shared queues and a durable store need it; only they record task activity). */
  enabled: boolean;
  telemetry: Pick<EngineTelemetry, 'log' | 'swept'>;
  /** Promotes a task's due retries. */
  promote(taskId: string): Promise<void>;
  /** Publishes a task's outbox. */
  relay(taskId: string): void;
}

/** Records task activity and sweeps the active tasks. @internal */
export class Sweeper {
  readonly #o: SweeperOptions;
  readonly #touched = new Map<string, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #stopped = false;

  constructor(options: SweeperOptions) {
    this.#o = options;
  }

  /** Records (at most every few seconds per task) that a task is active, for the sweeps. */
  touch(taskId: string): void {
    if (!this.#o.enabled) return; // only sweeps read the index
    const now = performance.now();
    const last = this.#touched.get(taskId);
    if (last !== undefined && now - last < Math.min(30_000, this.#o.windowMs / 4)) return;
    this.#touched.set(taskId, now);
    if (this.#touched.size > 10_000) this.#touched.clear();
    this.#o.state.touchTask(taskId).catch((error: unknown) => {
      this.#touched.delete(taskId);
      this.#o.telemetry.log('warn', 'could not record task activity', {
        task_id: taskId,
        error: String(error),
      });
    });
  }

  /** Starts the rounds (one every `intervalMs`). */
  start(): void {
    if (this.#stopped || !this.#o.enabled) return;
    this.#timer = unrefTimeout(() => {
      this.#timer = undefined;
      void this.sweep().finally(() => this.start());
    }, this.#o.intervalMs);
  }

  /** No more rounds; a round in progress stops at its next task. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /**
   * One round, if this process gets the lock (exposed for tests). Never throws. The resume of
   * a durable store sweeps every task the store still holds (`windowMs`) without the lock (the
   * process that held it is gone: one process per data directory).
   */
  async sweep(options: { windowMs?: number; lock?: boolean } = {}): Promise<void> {
    const { windowMs = this.#o.windowMs, lock = true } = options;
    if (this.#running) return;
    this.#running = true;
    const { state, telemetry } = this.#o;
    try {
      if (lock && !(await state.tryLock('sweep', this.#o.workerId, this.#o.intervalMs * 3))) return;
      const tasks = await state.activeTasks(windowMs, 10_000);
      for (const taskId of tasks) {
        if (this.#stopped) return;
        await this.#o.promote(taskId);
        this.#o.relay(taskId);
      }
      telemetry.swept();
    } catch (error) {
      telemetry.log('warn', 'sweep failed; the next one will try again', { error: String(error) });
    } finally {
      this.#running = false;
    }
  }
}
