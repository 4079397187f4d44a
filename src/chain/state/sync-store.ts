/**
 * The synchronous store the local twins of the chain transitions run over. It is exactly the
 * part of the in-process `LocalStore` the twins use, plus `now()`: a twin reads and writes
 * through it from its first call to its last without awaiting, so running it inside one
 * synchronous block (the in-process store) or one write transaction (a durable store) makes the
 * whole transition atomic, the way a Lua script is on Redis.
 *
 * Semantics follow Redis: keys are full keys (no prefix is added), strings and sorted sets live
 * under separate keys, a TTL in ms is relative to `now()`, and an expired key reads as missing.
 * A call on a key of the other type throws (Redis' WRONGTYPE), as does `incr` on a string that
 * is not an integer; the twins check what they read before their first write, so such a throw
 * never leaves a transition half-written.
 *
 * `LocalStore` (the in-process store) implements it as is; a durable store implements it over
 * one write transaction.
 */

/** A synchronous key-value store with strings and sorted sets (the local twins' only door). */
export interface SyncStore {
  /** The store's current time in ms: the clock every lease, due time and TTL is measured on. */
  now(): number;
  /**
   * Optional (the in-process store has it): runs `run`, synchronous, with `now()` read once, as
   * a script sees one time on Redis. A transition runs inside it when the store has it.
   */
  atomic?<T>(run: () => T): T;
  /** The string at `key`, or `null` when it is missing or expired. */
  get(key: string): string | null;
  /** Sets the string at `key`, with a TTL in ms when given (else the key does not expire). */
  set(key: string, value: string, ttlMs?: number): void;
  /**
   * Optional (the in-process store has it): the string at `key` decoded as JSON, kept decoded
   * by the store between reads; undefined when the key is missing. The value is shared: the
   * caller copies it before changing anything.
   */
  getJson?(key: string): unknown;
  /**
   * Optional, with {@link SyncStore.getJson}: sets the string at `key` to `JSON.stringify(value)`,
   * which the store may make only when the text is read; the caller never changes `value` again.
   */
  setJson?(key: string, value: object, ttlMs?: number): void;
  /** Sets the string at `key` only when the key is missing; true when it was set. */
  setNX(key: string, value: string, ttlMs?: number): boolean;
  /** Whether `key` holds a live value of any type. */
  exists(key: string): boolean;
  /** Adds `by` to the integer string at `key` (a missing key counts as 0); returns the new value. */
  incr(key: string, by?: number): number;
  /** Sets the TTL of an existing key in ms; false when the key is missing. */
  expire(key: string, ttlMs: number): boolean;
  /** Adds or moves `member` of the sorted set at `key` to `score`; returns 1 when it was added. */
  zadd(key: string, score: number, member: string): number;
  /** Removes `member` from the sorted set at `key`; returns 1 when it was there. */
  zrem(key: string, member: string): number;
  /**
   * Members with `min <= score <= max`, lowest score first (ties by member), skipping `offset`
   * and returning at most `count` (-1: all).
   */
  zrangeByScore(key: string, min: number, max: number, offset?: number, count?: number): string[];
  /** Removes the members with `min <= score <= max`; returns how many were removed. */
  zremRangeByScore(key: string, min: number, max: number): number;
}
