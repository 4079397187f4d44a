/**
 * The synchronous in-process store under {@link LocalBackend}. Every method runs to completion
 * without yielding, so a sequence of calls made in one synchronous block is atomic within the
 * process: in-process state machines (the chain's TypeScript transitions, the rate limiter)
 * use it directly the way Lua scripts use Redis.
 *
 * Keys here are full keys (no prefix is added). Semantics follow Redis: strings and sorted
 * sets, WRONGTYPE and integer errors, PTTL answers, lazy expiry on access plus a periodic sweep
 * of a bounded batch of keys that have a TTL.
 */
import { systemClock, unrefInterval, type Clock } from '../internal/clock.js';
import { addInteger, wrongType } from './args.js';
import { SortedSet } from './sorted-set.js';

/**
 * One key. Every entry has the same fields (one shape for the engine's lookups): a string holds
 * its text, or the value it is the JSON of (see {@link LocalStore.setJson}) with the text made
 * on the first read, or both; a sorted set holds its set.
 */
class Entry {
  constructor(
    public kind: 'string' | 'zset',
    /** The text; undefined while only `decoded` is kept (made from it when read). */
    public value: string | undefined,
    /** The text decoded (JSON), once read or set as such; undefined until then. */
    public decoded: unknown,
    public zset: SortedSet | undefined,
    public expiresAt: number,
  ) {}
}

/** The text of a string entry (made from its decoded value once, when set by value). */
function textOf(e: Entry): string {
  return (e.value ??= JSON.stringify(e.decoded));
}

/** Options of {@link LocalStore}. @internal */
export interface LocalStoreOptions {
  /** Time source for expiry. @defaultValue Date.now */
  clock?: Clock;
  /** Period of the expiry sweep in ms; 0 turns it off (expiry stays lazy). @defaultValue 1000 */
  sweepIntervalMs?: number;
  /** Most keys with a TTL examined per sweep. @defaultValue 1000 */
  sweepBatch?: number;
}

/**
 * A synchronous, in-process store with Redis semantics for strings and sorted sets.
 * @internal
 */
export class LocalStore {
  readonly #entries = new Map<string, Entry>();
  /** Keys that carry a TTL, in the order their TTL was set: the sweep walks these. */
  readonly #volatile = new Set<string>();
  readonly #clock: Clock;
  readonly #sweepBatch: number;
  #sweepTimer: ReturnType<typeof setInterval> | null = null;
  #sweepCursor: Iterator<string> | null = null;
  /** The time inside {@link LocalStore.atomic}; undefined outside. */
  #frozenAt: number | undefined = undefined;

  constructor(options: LocalStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#sweepBatch = options.sweepBatch ?? 1000;
    const interval = options.sweepIntervalMs ?? 1000;
    if (interval > 0) this.#sweepTimer = unrefInterval(() => this.sweep(), interval);
  }

  /** The store's current time in ms (the time {@link LocalStore.atomic} read, inside it). */
  now(): number {
    const frozen = this.#frozenAt;
    return frozen === undefined ? this.#clock.now() : frozen;
  }

  /**
   * Runs `run` (synchronous: atomic within the process) with the store's time read once, as a
   * script sees one time on Redis: every expiry check and TTL inside it uses that time.
   */
  atomic<T>(run: () => T): T {
    if (this.#frozenAt !== undefined) return run();
    this.#frozenAt = this.#clock.now();
    try {
      return run();
    } finally {
      this.#frozenAt = undefined;
    }
  }

  /** Number of keys, including expired ones not yet swept. */
  get rawSize(): number {
    return this.#entries.size;
  }

  get(key: string): string | null {
    const e = this.#live(key);
    if (!e) return null;
    if (e.kind !== 'string') throw wrongType(key);
    return textOf(e);
  }

  set(key: string, value: string, ttlMs?: number): void {
    this.#setString(key, value, undefined, ttlMs);
  }

  /**
   * The string at `key` decoded as JSON (parsed once, then kept beside the text); undefined
   * when the key is missing. The value is the store's, shared by every reader: never change it.
   * @throws SyntaxError when the string is not JSON; WRONGTYPE on a sorted set.
   */
  getJson(key: string): unknown {
    const e = this.#live(key);
    if (!e) return undefined;
    if (e.kind !== 'string') throw wrongType(key);
    if (e.decoded === undefined) e.decoded = JSON.parse(e.value!) as unknown;
    return e.decoded;
  }

  /**
   * Sets the string at `key` to the JSON of `value` (`JSON.stringify`), made only when the text
   * is read: the store keeps `value` itself, which the caller must not change afterwards.
   */
  setJson(key: string, value: object, ttlMs?: number): void {
    this.#setString(key, undefined, value, ttlMs);
  }

  #setString(key: string, value: string | undefined, decoded: unknown, ttlMs?: number): void {
    const expiresAt = ttlMs === undefined ? Infinity : this.now() + ttlMs;
    const e = this.#entries.get(key);
    if (e !== undefined && e.kind === 'string') {
      // overwrite in place: one lookup, no new entry
      const wasVolatile = e.expiresAt !== Infinity;
      e.value = value;
      e.decoded = decoded;
      e.expiresAt = expiresAt;
      if (expiresAt !== Infinity) {
        if (!wasVolatile) this.#volatile.add(key);
      } else if (wasVolatile) this.#volatile.delete(key);
      return;
    }
    this.#entries.set(key, new Entry('string', value, decoded, undefined, expiresAt));
    if (expiresAt !== Infinity) this.#volatile.add(key);
    else if (e !== undefined && e.expiresAt !== Infinity) this.#volatile.delete(key);
  }

  setNX(key: string, value: string, ttlMs?: number): boolean {
    if (this.#live(key)) return false;
    this.set(key, value, ttlMs);
    return true;
  }

  del(...keys: string[]): number {
    let n = 0;
    for (const key of keys) {
      if (this.#live(key)) {
        this.#remove(key);
        n++;
      }
    }
    return n;
  }

  exists(key: string): boolean {
    return this.#live(key) !== undefined;
  }

  incr(key: string, by = 1): number {
    const e = this.#live(key);
    if (e && e.kind !== 'string') throw wrongType(key);
    const result = addInteger(key, e ? textOf(e) : null, by);
    if (e) {
      e.value = result.toString();
      e.decoded = undefined;
    } else
      this.#entries.set(
        key,
        new Entry('string', result.toString(), undefined, undefined, Infinity),
      );
    return Number(result);
  }

  mget(keys: string[]): (string | null)[] {
    return keys.map((key) => {
      const e = this.#live(key);
      return e && e.kind === 'string' ? textOf(e) : null;
    });
  }

  expire(key: string, ttlMs: number): boolean {
    const e = this.#live(key);
    if (!e) return false;
    const wasVolatile = e.expiresAt !== Infinity;
    e.expiresAt = this.now() + ttlMs;
    // a key with a TTL is in #volatile already
    if (!wasVolatile || e.expiresAt === Infinity) this.#track(key, e.expiresAt);
    return true;
  }

  /** Remaining TTL in ms; -1 without expiry; -2 when missing (PTTL). */
  ttl(key: string): number {
    const e = this.#live(key);
    if (!e) return -2;
    if (e.expiresAt === Infinity) return -1;
    return Math.max(0, Math.round(e.expiresAt - this.now()));
  }

  /** Removes the TTL; true when there was one (PERSIST). */
  persist(key: string): boolean {
    const e = this.#live(key);
    if (!e || e.expiresAt === Infinity) return false;
    e.expiresAt = Infinity;
    this.#volatile.delete(key);
    return true;
  }

  zadd(key: string, score: number, member: string): number {
    const e = this.#live(key);
    if (e && e.kind !== 'zset') throw wrongType(key);
    if (e) return e.zset!.add(score, member) ? 1 : 0;
    const zset = new SortedSet();
    zset.add(score, member);
    this.#entries.set(key, new Entry('zset', undefined, undefined, zset, Infinity));
    return 1;
  }

  zscore(key: string, member: string): number | null {
    const z = this.#zset(key);
    return z?.score(member) ?? null;
  }

  zrem(key: string, member: string): number {
    const z = this.#zset(key);
    if (!z) return 0;
    const removed = z.delete(member) ? 1 : 0;
    if (z.size === 0) this.#remove(key);
    return removed;
  }

  zcard(key: string): number {
    return this.#zset(key)?.size ?? 0;
  }

  zrangeByScore(key: string, min: number, max: number, offset = 0, count = -1): string[] {
    return this.#zset(key)?.rangeByScore(min, max, offset, count) ?? [];
  }

  zremRangeByScore(key: string, min: number, max: number): number {
    const z = this.#zset(key);
    if (!z) return 0;
    const n = z.removeRangeByScore(min, max);
    if (z.size === 0) this.#remove(key);
    return n;
  }

  /** Live keys starting with `prefix`. */
  keys(prefix = ''): string[] {
    const out: string[] = [];
    for (const key of [...this.#entries.keys()]) {
      if (key.startsWith(prefix) && this.#live(key)) out.push(key);
    }
    return out;
  }

  /** Deletes every key. */
  flush(): void {
    this.#entries.clear();
    this.#volatile.clear();
    this.#sweepCursor = null;
  }

  /** Deletes up to `sweepBatch` expired keys among those with a TTL; returns how many. */
  sweep(): number {
    const now = this.now();
    let examined = 0;
    let removed = 0;
    this.#sweepCursor ??= this.#volatile.values();
    while (examined < this.#sweepBatch) {
      const next = this.#sweepCursor.next();
      if (next.done) {
        this.#sweepCursor = null;
        break;
      }
      examined++;
      const key = next.value;
      const e = this.#entries.get(key);
      if (!e || e.expiresAt === Infinity) this.#volatile.delete(key);
      else if (e.expiresAt <= now) {
        this.#remove(key);
        removed++;
      }
    }
    return removed;
  }

  /** Stops the sweep timer. */
  close(): void {
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#sweepTimer = null;
  }

  #zset(key: string): SortedSet | undefined {
    const e = this.#live(key);
    if (!e) return undefined;
    if (e.kind !== 'zset') throw wrongType(key);
    return e.zset!;
  }

  #live(key: string): Entry | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    // no clock read for a key without a TTL
    if (e.expiresAt !== Infinity && e.expiresAt <= this.now()) {
      this.#remove(key);
      return undefined;
    }
    return e;
  }

  #track(key: string, expiresAt: number): void {
    if (expiresAt === Infinity) this.#volatile.delete(key);
    else this.#volatile.add(key);
  }

  #remove(key: string): void {
    this.#entries.delete(key);
    this.#volatile.delete(key);
  }
}
