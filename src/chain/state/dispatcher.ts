/**
 * The methods of {@link ChainStateStore}, each mapped to its transition in `transitions/`. An
 * implementation only says how one transition runs: `RedisChainState` calls its Lua script,
 * `LocalChainState` runs its local twin over a synchronous store.
 */
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { Transition, TransitionKeys } from './transition.js';
import * as t from './transitions/index.js';
import {
  RecoverCode,
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
  type TerminatedResult,
  type ThresholdInput,
  type ThresholdResult,
} from './types.js';

/**
 * A {@link ChainStateStore} whose every method is one transition (`recoverExpired`: one listing,
 * then one recovery per node), run by {@link ChainStateDispatcher.run}.
 * @internal
 */
export abstract class ChainStateDispatcher implements ChainStateStore {
  readonly #keys: ChainKeyBuilder;

  /** @param keys - the key layout the transitions build their keys with */
  constructor(keys: ChainKeyBuilder) {
    this.#keys = keys;
  }

  /** Runs one transition atomically and returns its result. */
  protected abstract run<I, K extends TransitionKeys, R>(
    transition: Transition<I, K, R>,
    input: I,
  ): Promise<R>;

  async claim(input: ClaimInput): Promise<ClaimResult> {
    return this.run(t.claim, input);
  }

  async renewLease(input: RenewLeaseInput): Promise<RenewLeaseResult> {
    return this.run(t.renewLease, input);
  }

  async commitSuccess(input: CommitSuccessInput): Promise<0 | 1 | 2 | 3> {
    return (await this.run(t.commitSuccess, input)).code;
  }

  async commitSuccessDetailed(input: CommitSuccessInput): Promise<CommitSuccessResult> {
    return this.run(t.commitSuccess, input);
  }

  async commitError(input: CommitErrorInput): Promise<0 | 1 | 2> {
    return this.run(t.commitError, input);
  }

  async recoverZombie(node: NodeAddress): Promise<0 | 1 | 2> {
    return this.run(t.recoverZombie, { taskId: node.taskId, nodeId: this.#keys.ptmKey(node) });
  }

  async recoverExpired(taskId: string, max: number): Promise<number> {
    let recovered = 0;
    for (const nodeId of await this.run(t.expiredLeases, { taskId, max }))
      if ((await this.run(t.recoverZombie, { taskId, nodeId })) === RecoverCode.RECOVERED)
        recovered++;
    return recovered;
  }

  async thresholdDecide(input: ThresholdInput): Promise<ThresholdResult> {
    return this.run(t.thresholdDecide, input);
  }

  async retrySchedule(input: RetryScheduleInput): Promise<0 | 1 | 2> {
    return this.run(t.retrySchedule, input);
  }

  async promoteDueRetries(taskId: string, max: number): Promise<string[]> {
    return this.run(t.retryPromote, { taskId, max });
  }

  async touchTask(taskId: string): Promise<void> {
    await this.run(t.taskTouch, { taskId });
  }

  async activeTasks(windowMs: number, max: number): Promise<string[]> {
    return this.run(t.tasksActive, { windowMs, max });
  }

  async tryLock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    return this.run(t.lock, { name, owner, ttlMs });
  }

  async terminateMark(
    taskId: string,
    runId: string,
    moduleId: string | undefined,
    reason: string,
  ): Promise<0 | 1> {
    return this.run(t.terminateMark, { taskId, runId, moduleId, reason });
  }

  async terminated(taskId: string, runId: string, moduleId: string): Promise<TerminatedResult> {
    return this.run(t.terminated, { taskId, runId, moduleId });
  }

  async tryAllowFallbackOnce(node: NodeAddress): Promise<0 | 1> {
    return this.run(t.fallbackGate, node);
  }

  async takeOutbox(taskId: string, max: number, leaseMs: number): Promise<string[]> {
    return this.run(t.outboxTake, { taskId, max, leaseMs });
  }

  async ackOutbox(taskId: string, entries: string[]): Promise<number> {
    if (entries.length === 0) return 0;
    return this.run(t.outboxAck, { taskId, entries });
  }
}
