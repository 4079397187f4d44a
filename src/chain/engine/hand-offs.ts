/**
 * Hand-offs to in-memory queues over a store that outlives the process (the engine's
 * `allowVolatileQueues`). Such a queue loses its messages when the process dies while the
 * state survives: a node created by its parent's commit, relayed, never claimed, would be
 * known to the state and held by no queue. So every message pushed to such a queue is first
 * written to the store (one key per message, indexed per task), and removed once the work it
 * carries is settled. `start()` reads them back over the active tasks (at most
 * {@link MAX_PER_TASK} per task) and queues them again: a restart never ends idle with work
 * missing. A message queued twice is harmless — its node's claim lets one copy run.
 */
import { sleep } from '../../internal/abort.js';
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { CacheService } from '../../store/index.js';
import { normalizeMessage, type ChainInput } from '../messages.js';
import type { ChainQueue, Delivery, PushOptions } from '../queue.js';
import type { ChainStateStore } from '../state/index.js';
import type { NodeOutcome } from './processor.js';
import type { EngineTelemetry } from './telemetry.js';
import type { ChainQueues } from './types.js';

/** Hand-offs read back per task by one recovery pass. */
export const MAX_PER_TASK = 10_000;
/** Markers read per round trip. */
const CHUNK = 256;
/** Outcomes after which a node's message is no longer needed. */
const FINAL: ReadonlySet<NodeOutcome> = new Set<NodeOutcome>([
  'committed',
  'replayed',
  'duplicate_done',
  'stale_step',
  'failed',
  'error_already_emitted',
]);

/** Options of {@link HandOffs}. @internal */
export interface HandOffsOptions {
  store: CacheService;
  state: ChainStateStore;
  keys: ChainKeyBuilder;
  ttlMs: number;
  /** Node lease: a node its dead process still held is claimable once this has passed. */
  leaseMs: number;
  /** Tasks active within this window are looked at. */
  windowMs: number;
  /** Outbox lease: what a dead relay had taken is handed out again once this has passed. */
  relayLeaseMs: number;
  /** Publishes a task's outbox. */
  relay(taskId: string): void;
  telemetry: Pick<EngineTelemetry, 'log'>;
}

/** Records hand-offs to volatile queues and queues them again on start. @internal */
export class HandOffs {
  readonly #o: HandOffsOptions;
  readonly #touched = new Set<string>();
  readonly #stop = new AbortController();
  #raw: ChainQueues | undefined;
  #recovering = false;
  /** Messages queued again by the last pass and not settled yet. */
  readonly #recovered = new Set<string>();
  /** A message queued again met a node another owner (the dead process) still held. */
  #lockedSeen = false;

  constructor(options: HandOffsOptions) {
    this.#o = options;
  }

  /** Whether a recovery pass is running (or waiting for its second pass). */
  get busy(): boolean {
    return this.#recovering;
  }

  /** The queues, each push recorded first. */
  guard(queues: ChainQueues): ChainQueues {
    this.#raw = queues;
    return {
      task: new GuardedQueue(queues.task, this),
      parser: new GuardedQueue(queues.parser, this),
      error: new GuardedQueue(queues.error, this),
    };
  }

  /** Writes a message down before it goes to a volatile queue. @internal */
  async record(raw: string): Promise<void> {
    const at = this.#address(raw);
    if (!at) return; // malformed: its consumer dead-letters it
    const { store, keys, ttlMs, state } = this.#o;
    const index = keys.handOffIndex(at.taskId);
    await Promise.all([
      store.set(keys.handOff(at.taskId, at.id), raw, { ttlMs }),
      store.zadd(index, Date.now(), at.id).then(() => store.expire(index, ttlMs)),
    ]);
    if (!this.#touched.has(at.taskId)) {
      await state.touchTask(at.taskId); // recovery visits the active tasks
      if (this.#touched.size >= 10_000) this.#touched.clear();
      this.#touched.add(at.taskId);
    }
  }

  /**
   * The ingress is done with a message: forget it when the work it carries is settled (for a
   * node, `outcome` says whether it is; a task or error message is settled once handled).
   */
  settled(input: ChainInput, outcome?: NodeOutcome): void {
    const at = this.#addressOf(input);
    if (this.#recovered.size > 0) {
      if (outcome === 'locked_by_other' && this.#recovered.has(at.id)) this.#lockedSeen = true;
      if (outcome === undefined || FINAL.has(outcome) || outcome === 'locked_by_other')
        this.#recovered.delete(at.id);
    }
    if (outcome !== undefined && !FINAL.has(outcome)) return;
    this.#o.store.del(this.#o.keys.handOff(at.taskId, at.id)).catch((error: unknown) => {
      this.#o.telemetry.log(
        'warn',
        'could not forget a settled hand-off (queued again on restart)',
        {
          task_id: at.taskId,
          error: String(error),
        },
      );
    });
  }

  /**
   * Queues again what the active tasks' hand-offs still hold. When it found any (a process
   * died), it stays busy until the relay lease has passed and relays the active tasks then (what
   * the dead relay had taken comes back), and, when a node the dead process held was met, queues
   * again what is still unsettled once a node lease has passed too. Never throws.
   */
  async recover(): Promise<void> {
    if (this.#raw === undefined || this.#recovering) return;
    this.#recovering = true;
    try {
      const tasks = await this.#o.state.activeTasks(this.#o.windowMs, 10_000);
      if ((await this.#pass(tasks)) === 0) return;
      // work queued again: a process died. What its relay had taken from the outboxes (the
      // items of its last commits among them) comes back once the relay lease has run out; a
      // node it still held (a claim met LOCKED_BY_OTHER) is claimable once a node lease has
      const now = performance.now();
      const outboxes = now + this.#o.relayLeaseMs;
      const nodes = now + this.#o.leaseMs;
      while (!this.#stop.signal.aborted) {
        const t = performance.now();
        // (every message queued again has met its claim by then, or a node lease has passed)
        const claimed = this.#recovered.size === 0 && !this.#lockedSeen;
        if (t >= outboxes && (claimed || t >= nodes)) break;
        await sleep(50, this.#stop.signal).catch(() => {});
      }
      if (this.#stop.signal.aborted) return;
      for (const taskId of tasks) this.#o.relay(taskId);
      if (this.#lockedSeen) await this.#pass(tasks);
    } catch (error) {
      this.#o.telemetry.log('error', 'recovery of queued work failed; the next start tries again', {
        error: String(error),
      });
    } finally {
      this.#recovering = false;
    }
  }

  /** Ends a recovery in progress at its next step. */
  stop(): void {
    this.#stop.abort();
  }

  /** One pass over the active tasks; returns how many messages it queued again. */
  async #pass(tasks: readonly string[]): Promise<number> {
    const { store, keys, telemetry } = this.#o;
    const raw = this.#raw!;
    const began = Date.now();
    this.#recovered.clear();
    this.#lockedSeen = false;
    let total = 0;
    for (const taskId of tasks) {
      const index = keys.handOffIndex(taskId);
      const ids = await store.zrangeByScore(index, -Infinity, Infinity, { count: MAX_PER_TASK });
      let queued = 0;
      for (let i = 0; i < ids.length; i += CHUNK) {
        const chunk = ids.slice(i, i + CHUNK);
        const messages = await store.mget(chunk.map((id) => keys.handOff(taskId, id)));
        for (const [j, message] of messages.entries()) {
          if (message === null || this.#stop.signal.aborted) continue;
          const kind = chunk[j]![0];
          const queue = kind === 't' ? raw.task : kind === 'e' ? raw.error : raw.parser;
          this.#recovered.add(chunk[j]!);
          await queue.push(message); // already recorded: straight to the queue
          queued++;
        }
      }
      // everything read was settled: drop it from the index (what was recorded since stays)
      if (queued === 0 && ids.length > 0 && ids.length < MAX_PER_TASK)
        await store.zremRangeByScore(index, -Infinity, began);
      if (queued > 0) {
        telemetry.log('info', `recovery: ${queued} message(s) no queue held were queued again`, {
          task_id: taskId,
          truncated: ids.length >= MAX_PER_TASK,
        });
      }
      total += queued;
    }
    return total;
  }

  #address(raw: string): { taskId: string; id: string } | null {
    let input: ChainInput;
    try {
      input = normalizeMessage(raw);
    } catch {
      return null;
    }
    return this.#addressOf(input);
  }

  #addressOf(input: ChainInput): { taskId: string; id: string } {
    const { keys } = this.#o;
    switch (input.kind) {
      case 'task':
        return { taskId: input.task.taskId, id: 't' };
      case 'parser_task':
        return { taskId: input.node.taskId, id: `p${keys.ptmKey(input.node)}` };
      case 'error_task':
        return {
          taskId: input.node.taskId,
          id: `e${keys.ptmKey(input.node)}@${input.node.attempt}`,
        };
    }
  }
}

/** A queue whose pushes are recorded by {@link HandOffs} before they reach it. */
class GuardedQueue implements ChainQueue<string> {
  readonly name: string;
  readonly #inner: ChainQueue<string>;
  readonly #handOffs: HandOffs;

  constructor(inner: ChainQueue<string>, handOffs: HandOffs) {
    this.name = inner.name;
    this.#inner = inner;
    this.#handOffs = handOffs;
  }

  async offer(message: string): Promise<boolean> {
    await this.#handOffs.record(message);
    return this.#inner.offer(message);
  }

  async push(message: string, options?: PushOptions): Promise<void> {
    await this.#handOffs.record(message);
    await this.#inner.push(message, options);
  }

  receive(options?: { signal?: AbortSignal }): Promise<Delivery<string> | null> {
    return this.#inner.receive(options);
  }

  size(): number {
    return this.#inner.size();
  }

  inFlight(): number {
    return this.#inner.inFlight();
  }

  close(): void {
    this.#inner.close();
  }

  deadLetter(message: string, reason: string): Promise<void> {
    return this.#inner.deadLetter?.(message, reason) ?? Promise.resolve();
  }
}
