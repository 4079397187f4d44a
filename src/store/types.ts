/**
 * The CacheService contract shared by the in-process and the Redis backend, and the script
 * runner contract that Redis-backed primitives (rate limiter, chain state machine) call.
 */
import type { Logger } from '../observe/logger.js';
import type { Clock } from '../internal/clock.js';

/** Which backend a {@link CacheService} runs on. */
export type RuntimeMode = 'distributed' | 'single_node';

/** Options of {@link CacheService.set} and {@link CacheService.setNX}. */
export interface SetOptions {
  /** Time to live in milliseconds (integer >= 1). Omit for no expiry. */
  ttlMs?: number;
}

/** Options of {@link CacheService.zrangeByScore}. */
export interface RangeOptions {
  /** Members to skip from the start of the range (integer >= 0). @defaultValue 0 */
  offset?: number;
  /** Most members to return (integer >= 0). Omit for all. */
  count?: number;
}

/**
 * A small key-value and sorted-set store with Redis semantics, in two backends that answer
 * identically: {@link LocalBackend} (in-process) and {@link RedisBackend}.
 *
 * Keys passed to every method are relative: the service adds its `keyPrefix`.
 */
export interface CacheService {
  /** `'distributed'` on Redis, `'single_node'` in-process. */
  readonly mode: RuntimeMode;
  /** The prefix added to every key. */
  readonly keyPrefix: string;
  /** True when what is written survives the process (the durable store); absent otherwise. */
  readonly durable?: boolean;
  /** The value of `key`, or null when missing or expired. */
  get(key: string): Promise<string | null>;
  /** Sets `key` (overwriting any value and TTL). */
  set(key: string, value: string, options?: SetOptions): Promise<void>;
  /** Sets `key` only when it does not exist; true when it was set. */
  setNX(key: string, value: string, options?: SetOptions): Promise<boolean>;
  /** Deletes keys; returns how many existed. */
  del(...keys: string[]): Promise<number>;
  /**
   * Adds `by` (integer, default 1) to a 64-bit integer value (missing counts as 0); returns the
   * result as a number (exact up to 2^53, then rounded as `Number(text)` rounds; the stored
   * value stays exact).
   */
  incr(key: string, by?: number): Promise<number>;
  /** The values of `keys`, null for each missing one. */
  mget(keys: string[]): Promise<(string | null)[]>;
  /** Sets a TTL on an existing key; false when the key is missing. */
  expire(key: string, ttlMs: number): Promise<boolean>;
  /** Remaining TTL in ms; -1 when the key has no expiry; -2 when it is missing (PTTL semantics). */
  ttl(key: string): Promise<number>;
  /** Adds or updates a sorted-set member; returns 1 when added, 0 when updated. */
  zadd(key: string, score: number, member: string): Promise<number>;
  /** Members with `min <= score <= max`, by score then member, after `offset`, at most `count`. */
  zrangeByScore(key: string, min: number, max: number, options?: RangeOptions): Promise<string[]>;
  /** Removes members with `min <= score <= max`; returns how many. */
  zremRangeByScore(key: string, min: number, max: number): Promise<number>;
  /** Every live key starting with `prefix` (relative to the service prefix), in no set order. */
  scan(prefix: string): AsyncIterable<string>;
  /** Releases connections and timers. Further calls fail. */
  close(): Promise<void>;
}

/** Options of {@link ScriptRunner.runScript}. */
export interface RunScriptOptions {
  /**
   * The caller knows its KEYS span several hash slots and the server is not a cluster (for
   * example a batch of unrelated rate-limit decisions): skip the same-slot check. Ignored on a
   * cluster, where the check always runs.
   */
  crossSlot?: boolean;
}

/**
 * The reply shape of every mocra Redis script: a flat array `[code, msg, ...payload]` of
 * integers and strings, decoded into this object in one place.
 */
export interface ScriptReply {
  /** The script's integer result code (each script documents its codes in its header). */
  code: number;
  /** A short human-readable name of the code. */
  msg: string;
  /** The rest of the reply: integers and strings only. */
  payload: (string | number)[];
}

/**
 * Runs the compiled scripts in `lua/` by name. Implemented by {@link RedisBackend}; keys are
 * given relative and the runner adds the service prefix.
 */
export interface ScriptRunner {
  /** Runs script `name` with EVALSHA (loading it on NOSCRIPT and retrying once). */
  runScript(
    name: string,
    keys: string[],
    args: (string | number)[],
    options?: RunScriptOptions,
  ): Promise<ScriptReply>;
}

/** Options common to both backends. */
export interface CacheServiceBaseOptions {
  /** Prefix added to every key. @defaultValue '' */
  keyPrefix?: string;
  /** Where the chosen mode and warnings are logged. @defaultValue silentLogger */
  logger?: Logger;
  /** Time source for TTLs of the local backend. @defaultValue Date.now */
  clock?: Clock;
}
