/**
 * The chain state machine on Redis: every transition is exactly one Lua script call (one round
 * trip), all its keys in the task's hash slot. Codes match `LocalChainState` exactly.
 */
import { ErrorCode, MocraError, isMocraError } from '../../errors.js';
import type { Clock } from '../../internal/clock.js';
import { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { ScriptReply, ScriptRunner } from '../../store/types.js';
import type { ChainStateOptions } from './local-chain-state.js';
import {
  CHAIN_SCHEMA_VERSION,
  type ChainStateStore,
  type ClaimInput,
  type ClaimResult,
  type CommitErrorInput,
  type CommitSuccessInput,
  type NodeAddress,
  type RetryScheduleInput,
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
  readonly #r: ScriptRunner;
  readonly #keys: ChainKeyBuilder;
  readonly #ttl: number;
  readonly #clock: Clock | undefined;

  constructor(runner: ScriptRunner, options: RedisChainStateOptions = {}) {
    this.#r = runner;
    this.#keys = options.keys ?? new ChainKeyBuilder();
    this.#ttl = options.stateTtlMs ?? 7 * 86_400_000;
    this.#clock = options.testClock;
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    const { node } = input;
    const k = this.#keys;
    const id = k.ptmKey(node);
    const reply = await this.#run(
      'ptm_claim',
      [
        k.ptmById(node.taskId, id),
        k.terminateTask(node.taskId),
        k.terminateModule(node.taskId, node.moduleId),
        k.leases(node.taskId),
      ],
      [
        this.#now(),
        input.owner,
        input.leaseMs,
        input.epoch,
        input.root ? '1' : '0',
        CHAIN_SCHEMA_VERSION,
        this.#ttl,
        id,
      ],
    );
    return {
      code: reply.code as ClaimResult['code'],
      version: Number(reply.payload[0] ?? 0),
      leaseUntil: Number(reply.payload[1] ?? 0),
      reason: String(reply.payload[2] ?? ''),
    };
  }

  async commitSuccess(input: CommitSuccessInput): Promise<0 | 1 | 2 | 3> {
    const { node } = input;
    const k = this.#keys;
    const id = k.ptmKey(node);
    const keys = [
      k.ptmById(node.taskId, id),
      k.advanceGate(node.taskId, node),
      k.outbox(node.taskId),
      k.reorderBuffer(node.taskId, node.runId, node.moduleId),
    ];
    const args: (string | number)[] = [
      this.#now(),
      input.owner,
      input.version,
      this.#ttl,
      CHAIN_SCHEMA_VERSION,
      input.successors.length,
      id,
    ];
    for (const s of input.successors) {
      const successorId = k.ptmKey(s.node);
      keys.push(k.ptmById(s.node.taskId, successorId));
      args.push(successorId, s.message);
    }
    keys.push(k.leases(node.taskId));
    for (const item of input.items) args.push(item);
    return (await this.#run('ptm_commit_success', keys, args)).code as 0 | 1 | 2 | 3;
  }

  async commitError(input: CommitErrorInput): Promise<0 | 1 | 2> {
    const { node } = input;
    const k = this.#keys;
    const id = k.ptmKey(node);
    const reply = await this.#run(
      'ptm_commit_error',
      [
        k.ptmById(node.taskId, id),
        k.errorEmit(node.taskId, node, input.errorHash),
        k.outbox(node.taskId),
        k.leases(node.taskId),
      ],
      [
        this.#now(),
        input.owner,
        input.version,
        this.#ttl,
        CHAIN_SCHEMA_VERSION,
        input.message ?? '',
        id,
      ],
    );
    return reply.code as 0 | 1 | 2;
  }

  async recoverZombie(node: NodeAddress): Promise<0 | 1 | 2> {
    return this.#recover(node.taskId, this.#keys.ptmKey(node));
  }

  async recoverExpired(taskId: string, max: number): Promise<number> {
    const reply = await this.#run(
      'ptm_expired_leases',
      [this.#keys.leases(taskId)],
      [this.#now(), max],
    );
    let recovered = 0;
    for (const id of reply.payload) {
      if ((await this.#recover(taskId, String(id))) === 0) recovered++;
    }
    return recovered;
  }

  async #recover(taskId: string, ptmId: string): Promise<0 | 1 | 2> {
    const k = this.#keys;
    return (
      await this.#run(
        'ptm_recover_zombie',
        [k.ptmById(taskId, ptmId), k.leases(taskId)],
        [this.#now(), ptmId],
      )
    ).code as 0 | 1 | 2;
  }

  async reorderEnqueue(node: NodeAddress, message: string): Promise<0 | 1> {
    const k = this.#keys;
    const reply = await this.#run(
      'ptm_reorder_enqueue',
      [k.reorderBuffer(node.taskId, node.runId, node.moduleId)],
      [k.ptmKey(node), message, this.#ttl],
    );
    return reply.code as 0 | 1;
  }

  async thresholdDecide(input: ThresholdInput): Promise<ThresholdResult> {
    const k = this.#keys;
    const reply = await this.#run(
      'etm_threshold_decide',
      [
        k.moduleThreshold(input.taskId, input.moduleId),
        k.taskThreshold(input.taskId),
        k.terminateTask(input.taskId),
        k.terminateModule(input.taskId, input.moduleId),
        ...(input.failureId === undefined ? [] : [k.thresholdMark(input.taskId, input.failureId)]),
      ],
      [input.moduleThreshold, input.taskThreshold, input.retryAfterMs, this.#ttl],
    );
    return {
      code: reply.code as ThresholdResult['code'],
      moduleErrors: Number(reply.payload[0] ?? 0),
      taskErrors: Number(reply.payload[1] ?? 0),
    };
  }

  async retrySchedule(input: RetryScheduleInput): Promise<0 | 1 | 2> {
    const { node } = input;
    const k = this.#keys;
    const reply = await this.#run(
      'etm_retry_schedule',
      [
        k.ptm(node.taskId, node),
        k.retryZset(node.taskId),
        k.terminateTask(node.taskId),
        k.terminateModule(node.taskId, node.moduleId),
      ],
      [
        this.#now(),
        input.attempt,
        input.maxRetries,
        input.delayMs,
        input.message,
        input.allowed ? '1' : '0',
        this.#ttl,
        CHAIN_SCHEMA_VERSION,
      ],
    );
    return reply.code as 0 | 1 | 2;
  }

  async promoteDueRetries(taskId: string, max: number): Promise<string[]> {
    const reply = await this.#run(
      'etm_retry_promote',
      [this.#keys.retryZset(taskId), this.#keys.outbox(taskId)],
      [this.#now(), max, this.#ttl],
    );
    return reply.payload.map(String);
  }

  async touchTask(taskId: string): Promise<void> {
    await this.#run('chain_task_touch', [this.#keys.activeTasks()], [this.#now(), taskId]);
  }

  async activeTasks(windowMs: number, max: number): Promise<string[]> {
    const reply = await this.#run(
      'chain_tasks_active',
      [this.#keys.activeTasks()],
      [this.#now(), windowMs, max],
    );
    return reply.payload.map(String);
  }

  async tryLock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.#run('chain_lock', [this.#keys.lock(name)], [owner, ttlMs])).code === 0;
  }

  async terminateMark(
    taskId: string,
    moduleId: string | undefined,
    reason: string,
  ): Promise<0 | 1> {
    const key =
      moduleId === undefined
        ? this.#keys.terminateTask(taskId)
        : this.#keys.terminateModule(taskId, moduleId);
    return (await this.#run('etm_terminate_mark', [key], [reason, this.#ttl])).code as 0 | 1;
  }

  async terminated(taskId: string, moduleId: string): Promise<TerminatedResult> {
    const reply = await this.#run(
      'chain_terminated',
      [this.#keys.terminateTask(taskId), this.#keys.terminateModule(taskId, moduleId)],
      [],
    );
    return {
      code: reply.code as TerminatedResult['code'],
      reason: String(reply.payload[0] ?? ''),
    };
  }

  async tryAllowFallbackOnce(node: NodeAddress): Promise<0 | 1> {
    return (
      await this.#run(
        'ptm_fallback_gate',
        [this.#keys.fallbackGate(node.taskId, node)],
        [this.#ttl],
      )
    ).code as 0 | 1;
  }

  async takeOutbox(taskId: string, max: number, leaseMs: number): Promise<string[]> {
    const reply = await this.#run(
      'chain_outbox_take',
      [this.#keys.outbox(taskId), this.#keys.outboxLeases(taskId)],
      [this.#now(), max, leaseMs, this.#ttl],
    );
    return reply.payload.map(String);
  }

  async ackOutbox(taskId: string, entries: string[]): Promise<number> {
    if (entries.length === 0) return 0;
    const reply = await this.#run('chain_outbox_ack', [this.#keys.outboxLeases(taskId)], entries);
    return Number(reply.payload[0] ?? 0);
  }

  #now(): string {
    return this.#clock ? String(Math.round(this.#clock.now())) : '';
  }

  async #run(name: string, keys: string[], args: (string | number)[]): Promise<ScriptReply> {
    try {
      return await this.#r.runScript(name, keys, args);
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
