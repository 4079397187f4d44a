/**
 * The chain state machine on Redis: every transition is exactly one Lua script call (one round
 * trip), all its keys in the task's hash slot. The keys, arguments and reply decoding of each
 * live with its local twin in `transitions/`. Codes match `LocalChainState` exactly.
 */
import { ErrorCode, MocraError, isMocraError } from '../../errors.js';
import type { Clock } from '../../internal/clock.js';
import { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { ScriptReply, ScriptRunner } from '../../store/types.js';
import { ChainStateDispatcher } from './dispatcher.js';
import type { ChainStateOptions } from './local-chain-state.js';
import {
  RUN_FINISHED,
  type RunRef,
  type Transition,
  type TransitionContext,
  type TransitionKeys,
} from './transition.js';
import { itemsAck, type ItemsAckInput } from './transitions/items-ack.js';

/** Redis reports the runs a script finished in its reply (see `#finishedRuns`), not through this. */
const ignoreFinished = (): void => {};

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
export class RedisChainState extends ChainStateDispatcher {
  readonly #keys: ChainKeyBuilder;
  readonly #runner: ScriptRunner;
  readonly #ttl: number;
  readonly #finishedTtl: number;
  readonly #onFinished: ((taskId: string, runId: string) => void) | undefined;
  readonly #clock: Clock | undefined;
  readonly #shared: TransitionContext;

  constructor(runner: ScriptRunner, options: RedisChainStateOptions = {}) {
    const keys = options.keys ?? new ChainKeyBuilder();
    super(keys);
    this.#keys = keys;
    this.#runner = runner;
    this.#ttl = options.stateTtlMs ?? 7 * 86_400_000;
    this.#finishedTtl = Math.min(this.#ttl, options.finishedRunTtlMs ?? 86_400_000);
    this.#onFinished = options.onRunFinished;
    this.#clock = options.testClock;
    this.#shared = {
      ttlMs: this.#ttl,
      now: '',
      keys,
      finishedTtlMs: this.#finishedTtl,
      finished: ignoreFinished,
    };
  }

  /** Reports the runs a reply says it finished (`run_finished:<i>` elements). */
  #finishedRuns(reply: ScriptReply, runs: readonly RunRef[]): void {
    for (const value of reply.payload) {
      if (typeof value !== 'string' || !value.startsWith(RUN_FINISHED)) continue;
      const run = runs[Number(value.slice(RUN_FINISHED.length)) - 1];
      if (run) this.#onFinished?.(run.taskId, run.runId);
    }
  }

  /** What a transition's arguments are built with: the same object for every call (no test clock). */
  #context(): TransitionContext {
    if (this.#clock !== undefined)
      return { ...this.#shared, now: String(Math.round(this.#clock.now())) };
    return this.#shared;
  }

  /** Runs a transition's script: one round trip. */
  protected async run<I, K extends TransitionKeys, R>(
    transition: Transition<I, K, R>,
    input: I,
  ): Promise<R> {
    const keys = transition.keys(this.#keys, input);
    const args = transition.args(input, this.#context());
    try {
      const reply = await this.#runner.runScript(
        transition.script,
        transition.redisKeys(keys),
        args,
        transition.crossSlot?.(input) === true ? { crossSlot: true } : undefined,
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

  /**
   * Acknowledges items of the items stream (see `CommitHandOff`) once handed over;
   * their runs stop waiting for them. Returns how many were still pending. @internal
   */
  async ackHandedItems(input: ItemsAckInput): Promise<number> {
    if (input.entries.length === 0) return 0;
    return this.run(itemsAck, input);
  }

  /** The store under this state (the engine checks whether commits can hand off). @internal */
  get runner(): ScriptRunner {
    return this.#runner;
  }
}
