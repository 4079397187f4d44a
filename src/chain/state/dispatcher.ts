/**
 * The methods of {@link ChainStateStore}, each mapped to its transition in `transitions/`. An
 * implementation only says how one transition runs: `RedisChainState` calls its Lua script,
 * `LocalChainState` runs its local twin over a synchronous store.
 */
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { Transition, TransitionKeys } from './transition.js';
import { cleanupPlan } from './run-cleanup.js';
import * as t from './transitions/index.js';
import {
  type ChainStateStore,
  type ClaimInput,
  type ClaimResult,
  type CommitErrorInput,
  type CommitSuccessInput,
  type CommitSuccessResult,
  type NodeAddress,
  type RenewLeaseInput,
  type RenewLeaseResult,
  type RetryScheduleInput,
  type RunCancelCode,
  type RunDispatchModule,
  type RunSnapshot,
  type TerminatedResult,
  type ThresholdInput,
  type ThresholdResult,
} from './types.js';

/**
 * A {@link ChainStateStore} whose every method is one transition, run by {@link ChainStateDispatcher.run}. A method that only runs
 * its transition hands back the promise of `run` itself (no async wrapper around it: `run` never
 * throws, it rejects).
 * @internal
 */
export abstract class ChainStateDispatcher implements ChainStateStore {
  readonly #keys: ChainKeyBuilder;

  /** @param keys - the key layout the transitions build their keys with */
  constructor(keys: ChainKeyBuilder) {
    this.#keys = keys;
  }

  /** Runs one transition atomically and returns its result; rejects (never throws) on failure. */
  protected abstract run<I, K extends TransitionKeys, R>(
    transition: Transition<I, K, R>,
    input: I,
  ): Promise<R>;

  claim(input: ClaimInput): Promise<ClaimResult> {
    return this.run(t.claim, input);
  }

  renewLease(input: RenewLeaseInput): Promise<RenewLeaseResult> {
    return this.run(t.renewLease, input);
  }

  async commitSuccess(input: CommitSuccessInput): Promise<0 | 1 | 2 | 3> {
    return (await this.run(t.commitSuccess, input)).code;
  }

  commitSuccessDetailed(input: CommitSuccessInput): Promise<CommitSuccessResult> {
    return this.run(t.commitSuccess, input);
  }

  commitError(input: CommitErrorInput): Promise<0 | 1 | 2> {
    return this.run(t.commitError, input);
  }

  async recoverZombie(node: NodeAddress): Promise<0 | 1 | 2> {
    return this.run(t.recoverZombie, { taskId: node.taskId, nodeId: this.#keys.ptmKey(node) });
  }

  /**
   * @deprecated No lease index is kept since key layout 3 (a claim takes over an expired lease
   * by itself): there is nothing to list, and this returns 0. Recover one node with
   * {@link ChainStateDispatcher.recoverZombie}.
   */
  recoverExpired(_taskId: string, _max: number): Promise<number> {
    return Promise.resolve(0);
  }

  thresholdDecide(input: ThresholdInput): Promise<ThresholdResult> {
    return this.run(t.thresholdDecide, input);
  }

  retrySchedule(input: RetryScheduleInput): Promise<0 | 1 | 2> {
    return this.run(t.retrySchedule, input);
  }

  promoteDueRetries(taskId: string, max: number): Promise<string[]> {
    return this.run(t.retryPromote, { taskId, max });
  }

  async touchTask(taskId: string): Promise<void> {
    await this.run(t.taskTouch, { taskId });
  }

  activeTasks(windowMs: number, max: number): Promise<string[]> {
    return this.run(t.tasksActive, { windowMs, max });
  }

  tryLock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.run(t.lock, { name, owner, ttlMs });
  }

  terminateMark(
    taskId: string,
    runId: string,
    moduleId: string | undefined,
    reason: string,
  ): Promise<0 | 1> {
    return this.run(t.terminateMark, { taskId, runId, moduleId, reason });
  }

  terminated(taskId: string, runId: string, moduleId: string): Promise<TerminatedResult> {
    return this.run(t.terminated, { taskId, runId, moduleId });
  }

  tryAllowFallbackOnce(node: NodeAddress): Promise<0 | 1> {
    return this.run(t.fallbackGate, node);
  }

  takeOutbox(taskId: string, max: number, leaseMs: number): Promise<string[]> {
    return this.run(t.outboxTake, { taskId, max, leaseMs });
  }

  async ackOutbox(
    taskId: string,
    entries: string[],
    runs?: readonly (string | undefined)[],
  ): Promise<number> {
    if (entries.length === 0) return 0;
    const input = runs === undefined ? { taskId, entries } : { taskId, entries, runs };
    return this.run(t.outboxAck, input);
  }

  runStart(taskId: string, runId: string, modules: readonly string[]): Promise<boolean> {
    return this.run(t.runStart, { taskId, runId, modules });
  }

  async runDispatch(
    taskId: string,
    runId: string,
    modules: readonly RunDispatchModule[],
  ): Promise<void> {
    await this.run(t.runDispatch, { taskId, runId, modules });
  }

  runCancel(
    taskId: string,
    runId: string,
  ): Promise<(typeof RunCancelCode)[keyof typeof RunCancelCode]> {
    return this.run(t.runCancel, { taskId, runId });
  }

  async runRead(taskId: string, runId: string): Promise<RunSnapshot | null> {
    const snap = await this.run(t.runRead, { taskId, runId });
    return snap && { ...snap, runId, taskId };
  }

  giveUp(node: NodeAddress, attempt: number): Promise<boolean> {
    return this.run(t.giveUp, { node, attempt });
  }

  async runCleanup(taskId: string, runId: string, max: number): Promise<number> {
    const entries = await this.run(t.runKeys, { taskId, runId, max });
    const last = entries.length < max;
    const modules = last ? Object.keys((await this.runRead(taskId, runId))?.modules ?? {}) : [];
    await this.run(t.runExpire, cleanupPlan(this.#keys, taskId, runId, entries, last, modules));
    return entries.length;
  }

  async indexRunKeys(taskId: string, runId: string, keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.run(t.runIndex, { taskId, runId, keys });
  }
}
