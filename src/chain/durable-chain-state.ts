/**
 * The chain state machine on the durable store: the local transition twins (the same code and
 * the same codes as the Lua scripts, through {@link LocalChainState}) run over the LMDB-backed
 * {@link SyncStore}, each transition inside one LMDB write transaction. A transition commits
 * all its writes or none, and once it has returned, a kill -9 does not undo it.
 */
import { ChainKeyBuilder } from '../keys/chain-key-builder.js';
import type { DurableBackend } from '../store/durable/durable-backend.js';
import type { DurableStore } from '../store/durable/durable-store.js';
import type { LocalBackend } from '../store/local-backend.js';
import { LocalChainState, type ChainStateOptions } from './state/local-chain-state.js';
import type { SyncStore } from './state/sync-store.js';
import type {
  ChainStateStore,
  ClaimInput,
  ClaimResult,
  CommitErrorInput,
  CommitSuccessInput,
  NodeAddress,
  RetryScheduleInput,
  TerminatedResult,
  ThresholdInput,
  ThresholdResult,
} from './state/types.js';

type Twin = LocalChainState;

/**
 * {@link ChainStateStore} on a {@link DurableBackend} (durable single-node mode). The engine
 * picks it by itself when its store is durable.
 *
 * @example
 * ```ts
 * const store = await DurableBackend.open({ path: './mocra-data' });
 * const state = new DurableChainState(store);
 * ```
 */
export class DurableChainState implements ChainStateStore {
  readonly #store: DurableStore;
  readonly #twin: Twin;
  readonly #prefix: string;
  readonly #keys: ChainKeyBuilder;

  constructor(backend: DurableBackend, options: ChainStateOptions = {}) {
    const store: SyncStore = backend.store; // the twins' only door, checked here
    void store;
    this.#store = backend.store;
    this.#prefix = backend.keyPrefix;
    this.#keys = options.keys ?? new ChainKeyBuilder();
    // The twins reach the store through `backend.store` and `backend.keyPrefix` only, and use
    // nothing beyond SyncStore: the durable backend offers both.
    this.#twin = new LocalChainState(backend as unknown as LocalBackend, options);
  }

  /**
   * Runs one transition in one write transaction. The twins' bodies never await, so the whole
   * transition runs inside `transaction`; they check what they read before their first write.
   */
  #tx<T>(transition: (twin: Twin) => Promise<T>): Promise<T> {
    return this.#store.transaction(() => transition(this.#twin));
  }

  claim(input: ClaimInput): Promise<ClaimResult> {
    return this.#tx((t) => t.claim(input));
  }

  commitSuccess(input: CommitSuccessInput): ReturnType<Twin['commitSuccess']> {
    return this.#tx((t) => t.commitSuccess(input));
  }

  commitError(input: CommitErrorInput): ReturnType<Twin['commitError']> {
    return this.#tx((t) => t.commitError(input));
  }

  recoverExpired(taskId: string, max: number): Promise<number> {
    return this.#tx((t) => t.recoverExpired(taskId, max));
  }

  recoverZombie(node: NodeAddress): ReturnType<Twin['recoverZombie']> {
    return this.#tx((t) => t.recoverZombie(node));
  }

  thresholdDecide(input: ThresholdInput): Promise<ThresholdResult> {
    return this.#tx((t) => t.thresholdDecide(input));
  }

  retrySchedule(input: RetryScheduleInput): ReturnType<Twin['retrySchedule']> {
    return this.#tx((t) => t.retrySchedule(input));
  }

  promoteDueRetries(taskId: string, max: number): Promise<string[]> {
    return this.#tx((t) => t.promoteDueRetries(taskId, max));
  }

  touchTask(taskId: string): Promise<void> {
    return this.#tx((t) => t.touchTask(taskId));
  }

  activeTasks(windowMs: number, max: number): Promise<string[]> {
    return this.#tx((t) => t.activeTasks(windowMs, max));
  }

  tryLock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.#tx((t) => t.tryLock(name, owner, ttlMs));
  }

  terminateMark(
    taskId: string,
    moduleId: string | undefined,
    reason: string,
  ): ReturnType<Twin['terminateMark']> {
    return this.#tx((t) => t.terminateMark(taskId, moduleId, reason));
  }

  terminated(taskId: string, moduleId: string): Promise<TerminatedResult> {
    return this.#tx((t) => t.terminated(taskId, moduleId));
  }

  tryAllowFallbackOnce(node: NodeAddress): ReturnType<Twin['tryAllowFallbackOnce']> {
    return this.#tx((t) => t.tryAllowFallbackOnce(node));
  }

  takeOutbox(taskId: string, max: number, leaseMs: number): Promise<string[]> {
    return this.#tx((t) => t.takeOutbox(taskId, max, leaseMs));
  }

  ackOutbox(taskId: string, entries: string[]): Promise<number> {
    return this.#tx((t) => t.ackOutbox(taskId, entries));
  }

  /**
   * Ends the lease of every outbox entry of `taskId` now, so the next take hands them out
   * again. For a resume only: one process per data directory, so entries leased by an earlier
   * process were leased by a process that is gone. Returns how many there were.
   */
  async expireOutboxLeases(taskId: string): Promise<number> {
    const key = this.#prefix + this.#keys.outboxLeases(taskId);
    return this.#store.transaction(() => {
      const s = this.#store;
      const leased = s.zrangeByScore(key, -Infinity, Infinity);
      const now = s.now();
      for (const entry of leased) if ((s.zscore(key, entry) ?? 0) > now) s.zadd(key, now, entry);
      return leased.length;
    });
  }
}
