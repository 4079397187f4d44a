/**
 * The chain state machine on Redis: every transition is exactly one Lua script call (one round
 * trip), all its keys in the task's hash slot. The keys, arguments and reply decoding of each
 * live with its local twin in `transitions/`. Codes match `LocalChainState` exactly.
 */
import { ErrorCode, MocraError, isMocraError } from '../../errors.js';
import type { Clock } from '../../internal/clock.js';
import { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { ScriptReply, ScriptRunner } from '../../store/types.js';
import type { ChainStateOptions } from './local-chain-state.js';
import { RUN_FINISHED, type RunRef, type Transition, type TransitionKeys } from './transition.js';
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

/** Options of {@link RedisChainState}. */
export interface RedisChainStateOptions extends ChainStateOptions {
  /**
   * TEST ONLY: drive the scripts' clock instead of Redis' `TIME`, so a parity test can replay
   * one clock on both implementations. Never set in production: processes must share one clock.
   */
  testClock?: Clock;
}

/**
 * {@link ChainStateStore} on a Redis {@link ScriptRunner} (a `RedisBackend`).
 *
 * @example
 * ```ts
 * const state = new RedisChainState(await createCacheService({ redis: url }) as RedisBackend);
 * ```
 */
export class RedisChainState implements ChainStateStore {
  readonly #runner: ScriptRunner;
  readonly #keys: ChainKeyBuilder;
  readonly #ttl: number;
  readonly #finishedTtl: number;
  readonly #onFinished: ((taskId: string, runId: string) => void) | undefined;
  readonly #clock: Clock | undefined;

  constructor(runner: ScriptRunner, options: RedisChainStateOptions = {}) {
    this.#runner = runner;
    this.#keys = options.keys ?? new ChainKeyBuilder();
    this.#ttl = options.stateTtlMs ?? 7 * 86_400_000;
    this.#finishedTtl = Math.min(this.#ttl, options.finishedRunTtlMs ?? 86_400_000);
    this.#onFinished = options.onRunFinished;
    this.#clock = options.testClock;
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
    for (const nodeId of await this.#run(t.expiredLeases, { taskId, max }))
      if ((await this.#run(t.recoverZombie, { taskId, nodeId })) === RecoverCode.RECOVERED)
        recovered++;
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
    await this.#run(t.taskTouch, { taskId });
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
    if (entries.length === 0) return 0;
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
    await this.#run(t.runDispatch, { taskId, runId, modules });
  }

  async runCancel(
    taskId: string,
    runId: string,
  ): Promise<(typeof RunCancelCode)[keyof typeof RunCancelCode]> {
    return this.#run(t.runCancel, { taskId, runId });
  }

  async runRead(taskId: string, runId: string): Promise<RunSnapshot | null> {
    const snap = await this.#run(t.runRead, { taskId, runId });
    return snap && { ...snap, runId, taskId };
  }

  async giveUp(node: NodeAddress, attempt: number): Promise<boolean> {
    return this.#run(t.giveUp, { node, attempt });
  }

  async runCleanup(taskId: string, runId: string, max: number): Promise<number> {
    const entries = await this.#run(t.runKeys, { taskId, runId, max });
    const last = entries.length < max;
    const modules = last ? Object.keys((await this.runRead(taskId, runId))?.modules ?? {}) : [];
    const plan = cleanupPlan(this.#keys, taskId, runId, entries, last, modules);
    await this.#run(t.runExpire, plan);
    return entries.length;
  }

  /** Indexes keys a node of the run wrote outside the transitions (its persisted requests). */
  async indexRunKeys(taskId: string, runId: string, keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.#run(t.runIndex, { taskId, runId, keys });
  }

  /** Reports the runs a reply says it finished (`run_finished:<i>` elements). */
  #finishedRuns(reply: ScriptReply, runs: readonly RunRef[]): void {
    for (const value of reply.payload) {
      if (typeof value !== 'string' || !value.startsWith(RUN_FINISHED)) continue;
      const run = runs[Number(value.slice(RUN_FINISHED.length)) - 1];
      if (run) this.#onFinished?.(run.taskId, run.runId);
    }
  }

  /** Runs a transition's script: one round trip. */
  async #run<I, K extends TransitionKeys, R>(
    transition: Transition<I, K, R>,
    input: I,
  ): Promise<R> {
    const keys = transition.keys(this.#keys, input);
    const now = this.#clock ? String(Math.round(this.#clock.now())) : '';
    const args = transition.args(input, {
      ttlMs: this.#ttl,
      now,
      keys: this.#keys,
      finishedTtlMs: this.#finishedTtl,
      finished: () => {},
    });
    try {
      const reply = await this.#runner.runScript(
        transition.script,
        transition.redisKeys(keys),
        args,
      );
      if (transition.runs !== undefined && this.#onFinished !== undefined)
        this.#finishedRuns(reply, transition.runs(input));
      return transition.decode(reply);
    } catch (error) {
      if (isMocraError(error) && /SCHEMA_MISMATCH/.test(error.message)) {
        throw new MocraError(
          ErrorCode.SCHEMA_MISMATCH,
          error.message.replace(/^.*SCHEMA_MISMATCH /, ''),
          { cause: error },
        );
      }
      throw error;
    }
  }
}
