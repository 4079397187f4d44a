/**
 * The shape of one transition of the chain state machine: everything both implementations need
 * to run it, kept side by side in one file under `transitions/` — the keys it touches (built
 * with the {@link ChainKeyBuilder}), the script's KEYS and ARGV in order, the decoding of the
 * script's reply, and the local twin that does the same over a {@link SyncStore}.
 * `RedisChainState` and `LocalChainState` only dispatch to these.
 */
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { LuaScriptName } from '../../store/lua-scripts.generated.js';
import type { ScriptReply } from '../../store/types.js';
import type { SyncStore } from './sync-store.js';

/** The keys of one call, by name: a key, or a list of keys (the successors of a commit). */
export type TransitionKeys = Record<string, string | readonly string[]>;

/** What a call gets besides its input. @internal */
export interface TransitionContext {
  /** TTL of every state key the transition writes, in ms. */
  readonly ttlMs: number;
  /**
   * The script's clock: '' in production (the script reads the server's `TIME`), or a TEST-ONLY
   * override in ms. The local twin reads `store.now()` instead.
   */
  readonly now: string;
  /** The key builder, for ids that are not keys (a node's id, a member of the lease index). */
  readonly keys: ChainKeyBuilder;
  /** TTL of a run's record once it has finished, in ms. */
  readonly finishedTtlMs: number;
  /** The local twins call this when their write finished a run (Redis replies with a marker). */
  readonly finished: (taskId: string, runId: string) => void;
}

/** A run a transition counts in, by task and run id. @internal */
export interface RunRef {
  readonly taskId: string;
  readonly runId: string;
}

/**
 * One transition: keys, script arguments, reply decoding and local twin. `I` is its input, `K`
 * its keys by name, `R` its result.
 * @internal
 */
export interface Transition<I, K extends TransitionKeys, R> {
  /** The Lua script in `lua/` that runs it on Redis. */
  readonly script: LuaScriptName;
  /** Its keys by name, relative (no store prefix). */
  keys(k: ChainKeyBuilder, input: I): K;
  /** The script's KEYS, in order. */
  redisKeys(keys: K): string[];
  /** The script's ARGV, in order. */
  args(input: I, ctx: TransitionContext): (string | number)[];
  /** Turns the script's reply into the result. */
  decode(reply: ScriptReply): R;
  /**
   * The runs the call counts in, in the order of their run keys: a reply element
   * `run_finished:<i>` (1-based) says the call finished the i-th.
   */
  runs?(input: I): readonly RunRef[];
  /**
   * Whether this call names keys outside its task's slot (a commit's hand-off to the streams, an
   * ack of items of several tasks): allowed on a standalone Redis only, where it is made.
   */
  crossSlot?(input: I): boolean;
  /**
   * The local twin: the same transition over a synchronous store, with full keys. It reads and
   * checks everything before its first write and never awaits, so it is atomic when run in one
   * synchronous block or one write transaction.
   */
  local(store: SyncStore, keys: K, input: I, ctx: TransitionContext): R;
}

/** Declares a transition (an identity function that checks the shape). @internal */
export function defineTransition<I, K extends TransitionKeys, R>(
  t: Transition<I, K, R>,
): Transition<I, K, R> {
  return t;
}

/** Prefixes every key of a call (the local store has no prefix of its own). @internal */
export function prefixKeys<K extends TransitionKeys>(prefix: string, keys: K): K {
  if (prefix === '') return keys;
  const out: Record<string, string | readonly string[]> = {};
  for (const [name, key] of Object.entries(keys))
    out[name] = typeof key === 'string' ? prefix + key : key.map((k) => prefix + k);
  return out as K;
}

/** The reply element of a script that finished the i-th run of its call (1-based). @internal */
export const RUN_FINISHED = 'run_finished:';
