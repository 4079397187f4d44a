/**
 * The chain state machine in TypeScript over the in-process store: each method runs the local
 * twin of its transition (`transitions/`) synchronously from its first read to its last write,
 * so it is atomic within the process — the same guarantee a Lua script gives on Redis. Codes
 * match `RedisChainState` exactly.
 */
import { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { LocalBackend } from '../../store/local-backend.js';
import type { SyncStore } from './sync-store.js';
import {
  prefixKeys,
  type Transition,
  type TransitionContext,
  type TransitionKeys,
} from './transition.js';
import { cleanupPlan } from './run-cleanup.js';
import * as t from './transitions/index.js';
import {
  RecoverCode,
  type ChainStateStore,
  type ClaimInput,
  type ClaimResult,
  type CommitErrorInput,
  type CommitSuccessInput,
  type NodeAddress,
  type RetryScheduleInput,
  type RunCancelCode,
  type RunDispatchModule,
  type RunSnapshot,
  type TerminatedResult,
  type ThresholdInput,
  type ThresholdResult,
} from './types.js';

/** Options shared by both chain state implementations. */
export interface ChainStateOptions {
  /** Key layout. @defaultValue new ChainKeyBuilder() */
  keys?: ChainKeyBuilder;
  /** TTL of every state key, in ms. @defaultValue 7 days */
  stateTtlMs?: number;
  /**
   * TTL of a run's state once the run has finished, in ms (at most `stateTtlMs`).
   * @defaultValue 1 day
   */
  finishedRunTtlMs?: number;
  /** Called when a transition of this store finished a run (to clean it up, wake waiters). */
  onRunFinished?: (taskId: string, runId: string) => void;
}

const DAY = 86_400_000;

/**
 * {@link ChainStateStore} on a {@link LocalBackend} (single-node mode).
 *
 * @example
 * ```ts
 * const state = new LocalChainState(new LocalBackend());
 * const claim = await state.claim({ node, owner: 'w1', leaseMs: 30_000, epoch: 0, root: true });
 * ```
 */
export class LocalChainState implements ChainStateStore {
  readonly #store: SyncStore;
  readonly #prefix: string;
  readonly #keys: ChainKeyBuilder;
  readonly #ctx: TransitionContext;

  constructor(backend: LocalBackend, options: ChainStateOptions = {}) {
    this.#store = backend.store;
    this.#prefix = backend.keyPrefix;
    this.#keys = options.keys ?? new ChainKeyBuilder();
    const ttlMs = options.stateTtlMs ?? 7 * DAY;
    const onFinished = options.onRunFinished;
    this.#ctx = {
      ttlMs,
      now: '',
      keys: this.#keys,
      finishedTtlMs: Math.min(ttlMs, options.finishedRunTtlMs ?? DAY),
      // after the twin's synchronous block: a listener never runs inside a transition
      finished: (taskId, runId) => {
        if (onFinished) queueMicrotask(() => onFinished(taskId, runId));
      },
    };
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    return this.#run(t.claim, input);
  }

  async commitSuccess(input: CommitSuccessInput): Promise<0 | 1 | 2 | 3> {
    return this.#run(t.commitSuccess, input);
  }

  async commitError(input: CommitErrorInput): Promise<0 | 1 | 2> {
    return this.#run(t.commitError, input);
  }

  async recoverZombie(node: NodeAddress): Promise<0 | 1 | 2> {
    return this.#run(t.recoverZombie, { taskId: node.taskId, nodeId: this.#keys.ptmKey(node) });
  }

  async recoverExpired(taskId: string, max: number): Promise<number> {
    let recovered = 0;
    for (const nodeId of this.#run(t.expiredLeases, { taskId, max }))
      if (this.#run(t.recoverZombie, { taskId, nodeId }) === RecoverCode.RECOVERED) recovered++;
    return recovered;
  }

  async thresholdDecide(input: ThresholdInput): Promise<ThresholdResult> {
    return this.#run(t.thresholdDecide, input);
  }

  async retrySchedule(input: RetryScheduleInput): Promise<0 | 1 | 2> {
    return this.#run(t.retrySchedule, input);
  }

  async promoteDueRetries(taskId: string, max: number): Promise<string[]> {
    return this.#run(t.retryPromote, { taskId, max });
  }

  async touchTask(taskId: string): Promise<void> {
    this.#run(t.taskTouch, { taskId });
  }

  async activeTasks(windowMs: number, max: number): Promise<string[]> {
    return this.#run(t.tasksActive, { windowMs, max });
  }

  async tryLock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.#run(t.lock, { name, owner, ttlMs });
  }

  async terminateMark(
    taskId: string,
    moduleId: string | undefined,
    reason: string,
  ): Promise<0 | 1> {
    return this.#run(t.terminateMark, { taskId, moduleId, reason });
  }

  async terminated(taskId: string, moduleId: string): Promise<TerminatedResult> {
    return this.#run(t.terminated, { taskId, moduleId });
  }

  async tryAllowFallbackOnce(node: NodeAddress): Promise<0 | 1> {
    return this.#run(t.fallbackGate, node);
  }

  async takeOutbox(taskId: string, max: number, leaseMs: number): Promise<string[]> {
    return this.#run(t.outboxTake, { taskId, max, leaseMs });
  }

  async ackOutbox(
    taskId: string,
    entries: string[],
    runs?: readonly (string | undefined)[],
  ): Promise<number> {
    const input = runs === undefined ? { taskId, entries } : { taskId, entries, runs };
    return this.#run(t.outboxAck, input);
  }

  async runStart(taskId: string, runId: string, modules: readonly string[]): Promise<boolean> {
    return this.#run(t.runStart, { taskId, runId, modules });
  }

  async runDispatch(
    taskId: string,
    runId: string,
    modules: readonly RunDispatchModule[],
  ): Promise<void> {
    this.#run(t.runDispatch, { taskId, runId, modules });
  }

  async runCancel(
    taskId: string,
    runId: string,
  ): Promise<(typeof RunCancelCode)[keyof typeof RunCancelCode]> {
    return this.#run(t.runCancel, { taskId, runId });
  }

  async runRead(taskId: string, runId: string): Promise<RunSnapshot | null> {
    const snap = this.#run(t.runRead, { taskId, runId });
    return snap && { ...snap, runId, taskId };
  }

  async giveUp(node: NodeAddress, attempt: number): Promise<boolean> {
    return this.#run(t.giveUp, { node, attempt });
  }

  async runCleanup(taskId: string, runId: string, max: number): Promise<number> {
    const entries = this.#run(t.runKeys, { taskId, runId, max });
    const last = entries.length < max;
    const modules = last ? Object.keys((await this.runRead(taskId, runId))?.modules ?? {}) : [];
    const plan = cleanupPlan(this.#keys, taskId, runId, entries, last, modules);
    this.#run(t.runExpire, plan);
    return entries.length;
  }

  /** Indexes keys a node of the run wrote outside the transitions (its persisted requests). */
  async indexRunKeys(taskId: string, runId: string, keys: readonly string[]): Promise<void> {
    if (keys.length > 0) this.#run(t.runIndex, { taskId, runId, keys });
  }

  /** Runs a transition's local twin over the store (synchronously: atomic in the process). */
  #run<I, K extends TransitionKeys, R>(transition: Transition<I, K, R>, input: I): R {
    const keys = prefixKeys(this.#prefix, transition.keys(this.#keys, input));
    return transition.local(this.#store, keys, input, this.#ctx);
  }
}
