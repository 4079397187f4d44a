/**
 * The synchronous store of the durable backend: the same strings-and-sorted-sets surface and
 * Redis semantics as the in-process {@link LocalStore}, kept in an LMDB environment on disk.
 *
 * Every write method runs in one LMDB write transaction, or joins the one {@link transaction}
 * opened around it: a chain transition made of several calls commits all of them or none, and a
 * committed transaction survives the process being killed.
 *
 * Layout (four databases, binary keys, see key-codec.ts):
 * - `kv`:  key → `{ t: 's', v, x }` (a string) or `{ t: 'z', id, n, x }` (a sorted set with `n`
 *   members); `x` is the expiry time in ms, 0 for none.
 * - `zm`:  set id · member → score (is it there, with what score).
 * - `zs`:  set id · score · member → the full member when it is long, else null (the order).
 * - `exp`: expiry bucket (the expiry time rounded up to the second) · key → null: what the sweep
 *   walks, oldest first.
 * @internal
 */
import { ConfigError } from '../../errors.js';
import { systemClock, unrefInterval, type Clock } from '../../internal/clock.js';
import { addInteger, wrongType } from '../args.js';
import { compareMembers } from '../sorted-set.js';
import {
  MAX_KEY_BYTES,
  MEMBER_PREFIX_BYTES,
  encodeId,
  encodeScore,
  isLongMemberKey,
  memberKey,
  prefixEnd,
} from './key-codec.js';
import type { LmdbDb, LmdbEnv } from './lmdb-types.js';

type StringEntry = { t: 's'; v: string; x: number };
type ZsetEntry = { t: 'z'; id: number; n: number; x: number };
type Entry = StringEntry | ZsetEntry;

/** Options of {@link DurableStore}. @internal */
export interface DurableStoreOptions {
  /** Time source for expiry. @defaultValue Date.now */
  clock?: Clock;
  /** Period of the expiry sweep in ms; 0 turns it off (expiry stays lazy). @defaultValue 1000 */
  sweepIntervalMs?: number;
  /** Most expired keys reclaimed per sweep. @defaultValue 1000 */
  sweepBatch?: number;
  /** Most key entries kept decoded in memory. @defaultValue 50000 */
  cacheEntries?: number;
}

const ZSET_ID = Buffer.from('zset-id');
const ROLLBACK = Symbol('rollback');
/** Width of one bucket of the expiry index, in ms: keys are reclaimed at most this late. */
const EXPIRY_BUCKET_MS = 1000;
const bucketOf = (x: number): number => Math.ceil(x / EXPIRY_BUCKET_MS) * EXPIRY_BUCKET_MS;
const ID_BYTES = 8;
const MEMBER_AT = ID_BYTES + 8;

/**
 * A synchronous store with Redis semantics for strings and sorted sets, on LMDB.
 * @internal
 */
export class DurableStore {
  readonly #env: LmdbEnv;
  readonly #kv: LmdbDb;
  readonly #zm: LmdbDb;
  readonly #zs: LmdbDb;
  readonly #exp: LmdbDb;
  readonly #meta: LmdbDb;
  readonly #clock: Clock;
  readonly #sweepBatch: number;
  #sweepTimer: ReturnType<typeof setInterval> | null = null;
  #depth = 0;
  /**
   * Entries by key, written through: this process is the only writer (the directory lock), so
   * the cache never goes stale; reads inside a write transaction skip LMDB. Cleared on rollback.
   */
  readonly #cache = new Map<string, Entry | null>();
  readonly #cacheMax: number;
  /** A store call failed inside the open transaction: it rolls back whatever the caller does. */
  #failed = false;

  constructor(env: LmdbEnv, options: DurableStoreOptions = {}) {
    this.#env = env;
    const db = (name: string): LmdbDb =>
      env.openDB({ name, keyEncoding: 'binary', encoding: 'msgpack', cache: false });
    this.#kv = db('kv');
    this.#zm = db('zm');
    this.#zs = db('zs');
    this.#exp = db('exp');
    this.#meta = db('meta');
    this.#clock = options.clock ?? systemClock;
    this.#sweepBatch = options.sweepBatch ?? 1000;
    this.#cacheMax = options.cacheEntries ?? 50_000;
    const interval = options.sweepIntervalMs ?? 1000;
    if (interval > 0) this.#sweepTimer = unrefInterval(() => this.sweep(), interval);
  }

  /** The database for the store's own bookkeeping (format marker, counters). */
  get meta(): LmdbDb {
    return this.#meta;
  }

  /** The store's current time in ms. */
  now(): number {
    return this.#clock.now();
  }

  /**
   * Runs `fn` in one write transaction: every write it makes commits together, or none does
   * when it throws — or when a store call inside it failed (WRONGTYPE, not an integer, a key too
   * long), even if `fn` caught that error or turned it into a rejected promise: `fn`'s result is
   * returned, nothing is written. Calls nest (an inner call joins the outer transaction). `fn`
   * must not await.
   */
  transaction<T>(fn: () => T): T {
    if (this.#depth > 0) return fn();
    this.#failed = false;
    let result: { value: T } | undefined;
    try {
      return this.#env.transactionSync(() => {
        this.#depth++;
        try {
          result = { value: fn() };
        } finally {
          this.#depth--;
        }
        if (this.#failed) throw ROLLBACK;
        return result.value;
      });
    } catch (error) {
      this.#cache.clear(); // it may hold writes that were just rolled back
      if (error === ROLLBACK && result) return result.value;
      throw error;
    } finally {
      this.#failed = false;
    }
  }

  get(key: string): string | null {
    const e = this.#live(key);
    if (!e) return null;
    if (e.t !== 's') throw this.#fail(wrongType(key));
    return e.v;
  }

  set(key: string, value: string, ttlMs?: number): void {
    this.transaction(() => {
      this.#replace(key, { t: 's', v: value, x: ttlMs === undefined ? 0 : this.now() + ttlMs });
    });
  }

  setNX(key: string, value: string, ttlMs?: number): boolean {
    return this.transaction(() => {
      if (this.#live(key)) return false;
      this.set(key, value, ttlMs);
      return true;
    });
  }

  del(...keys: string[]): number {
    return this.transaction(() => {
      let n = 0;
      for (const key of keys) {
        if (this.#live(key)) n++;
        this.#dropRaw(key);
      }
      return n;
    });
  }

  exists(key: string): boolean {
    return this.#live(key) !== undefined;
  }

  incr(key: string, by = 1): number {
    return this.transaction(() => {
      const e = this.#live(key);
      if (e && e.t !== 's') throw this.#fail(wrongType(key));
      let result: bigint;
      try {
        result = addInteger(key, e ? e.v : null, by);
      } catch (error) {
        throw this.#fail(error);
      }
      if (e) this.#putEntry(key, { t: 's', v: result.toString(), x: e.x });
      else this.#replace(key, { t: 's', v: result.toString(), x: 0 });
      return Number(result);
    });
  }

  mget(keys: string[]): (string | null)[] {
    return keys.map((key) => {
      const e = this.#live(key);
      return e && e.t === 's' ? e.v : null;
    });
  }

  expire(key: string, ttlMs: number): boolean {
    return this.transaction(() => {
      const e = this.#live(key);
      if (!e) return false;
      const old = e.x;
      e.x = this.now() + ttlMs;
      this.#putEntry(key, e);
      this.#index(this.#kb(key), old, e.x);
      return true;
    });
  }

  /** Remaining TTL in ms; -1 without expiry; -2 when missing (PTTL). */
  ttl(key: string): number {
    const e = this.#live(key);
    if (!e) return -2;
    if (e.x === 0) return -1;
    return Math.max(0, Math.round(e.x - this.now()));
  }

  /** Removes the TTL; true when there was one (PERSIST). */
  persist(key: string): boolean {
    return this.transaction(() => {
      const e = this.#live(key);
      if (!e || e.x === 0) return false;
      this.#index(this.#kb(key), e.x, 0);
      e.x = 0;
      this.#putEntry(key, e);
      return true;
    });
  }

  zadd(key: string, score: number, member: string): number {
    return this.transaction(() => {
      let e = this.#zset(key);
      if (!e) {
        e = { t: 'z', id: this.#nextId(), n: 0, x: 0 };
        this.#replace(key, e);
      }
      const id = encodeId(e.id);
      const { bytes, long } = memberKey(member);
      const zmKey = Buffer.concat([id, bytes]);
      const old = this.#zm.get(zmKey) as number | undefined;
      const s = score === 0 ? 0 : score;
      if (old === s) return 0;
      if (old !== undefined) this.#zs.removeSync(Buffer.concat([id, encodeScore(old), bytes]));
      this.#zs.putSync(Buffer.concat([id, encodeScore(s), bytes]), long ? member : null);
      this.#zm.putSync(zmKey, s);
      if (old !== undefined) return 0;
      e.n++;
      this.#putEntry(key, e);
      return 1;
    });
  }

  zscore(key: string, member: string): number | null {
    const e = this.#zset(key);
    if (!e) return null;
    const s = this.#zm.get(Buffer.concat([encodeId(e.id), memberKey(member).bytes]));
    return typeof s === 'number' ? s : null;
  }

  zrem(key: string, member: string): number {
    return this.transaction(() => {
      const e = this.#zset(key);
      if (!e) return 0;
      const id = encodeId(e.id);
      const { bytes } = memberKey(member);
      const zmKey = Buffer.concat([id, bytes]);
      const old = this.#zm.get(zmKey) as number | undefined;
      if (old === undefined) return 0;
      this.#zm.removeSync(zmKey);
      this.#zs.removeSync(Buffer.concat([id, encodeScore(old), bytes]));
      this.#shrink(key, e, 1);
      return 1;
    });
  }

  zcard(key: string): number {
    return this.#zset(key)?.n ?? 0;
  }

  zrangeByScore(key: string, min: number, max: number, offset = 0, count = -1): string[] {
    const e = this.#zset(key);
    if (!e || count === 0 || min > max) return [];
    const out: string[] = [];
    let skipped = 0;
    const full = (): boolean => count >= 0 && out.length >= count;
    const emit = (m: string): void => {
      if (skipped < offset) skipped++;
      else out.push(m);
    };
    // long members sharing a score and a key prefix sort by digest on disk: re-sort such runs
    let run: string[] = [];
    let runKey: Buffer | null = null;
    const flush = (): void => {
      run.sort(compareMembers);
      for (const m of run) emit(m);
      run = [];
      runKey = null;
    };
    for (const { key: k, value } of this.#zs.getRange(this.#scoreRange(e.id, min, max))) {
      const mk = k.subarray(MEMBER_AT);
      if (isLongMemberKey(mk)) {
        const rk = k.subarray(0, MEMBER_AT + MEMBER_PREFIX_BYTES);
        if (runKey !== null && !rk.equals(runKey)) flush();
        if (full()) break;
        runKey = rk;
        run.push(value as string);
        continue;
      }
      flush();
      if (full()) break;
      emit(mk.toString('utf8'));
      if (full()) break;
    }
    flush();
    return count >= 0 ? out.slice(0, count) : out;
  }

  zremRangeByScore(key: string, min: number, max: number): number {
    return this.transaction(() => {
      const e = this.#zset(key);
      if (!e || min > max) return 0;
      const id = encodeId(e.id);
      const doomed = [...this.#zs.getRange(this.#scoreRange(e.id, min, max))].map((r) => r.key);
      for (const k of doomed) {
        this.#zs.removeSync(k);
        this.#zm.removeSync(Buffer.concat([id, k.subarray(MEMBER_AT)]));
      }
      if (doomed.length > 0) this.#shrink(key, e, doomed.length);
      return doomed.length;
    });
  }

  /** Live keys starting with `prefix`. */
  keys(prefix = ''): string[] {
    const start = this.#kb(prefix);
    const end = prefixEnd(start);
    const now = this.now();
    const out: string[] = [];
    const range = start.length === 0 ? {} : end ? { start, end } : { start };
    for (const { key, value } of this.#kv.getRange(range)) {
      const e = value as Entry;
      if (e.x === 0 || e.x > now) out.push(key.toString('utf8'));
    }
    return out;
  }

  /** Reclaims up to `sweepBatch` expired keys, oldest expiry first; returns how many. */
  sweep(): number {
    const now = this.now();
    // buckets end at their time: every key in a bucket that ended is expired
    const end = prefixEnd(encodeScore(Math.floor(now / EXPIRY_BUCKET_MS) * EXPIRY_BUCKET_MS));
    return this.transaction(() => {
      const due = [...this.#exp.getRange({ ...(end ? { end } : {}), limit: this.#sweepBatch })];
      let removed = 0;
      for (const { key: k } of due) {
        this.#exp.removeSync(k);
        const key = k.subarray(8).toString('utf8');
        const e = this.#raw(key);
        if (e && e.x !== 0 && e.x <= now) {
          this.#dropRaw(key);
          removed++;
        }
      }
      return removed;
    });
  }

  /** Number of keys, including expired ones not yet swept. */
  get rawSize(): number {
    let n = 0;
    for (const _ of this.#kv.getRange({})) n++;
    return n;
  }

  /** Stops the sweep timer (the environment is closed by its owner). */
  stop(): void {
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#sweepTimer = null;
  }

  #scoreRange(id: number, min: number, max: number): { start: Buffer; end?: Buffer } {
    const idBytes = encodeId(id);
    const start = Buffer.concat([idBytes, encodeScore(min)]);
    const end = prefixEnd(Buffer.concat([idBytes, encodeScore(max)]));
    return end ? { start, end } : { start };
  }

  #kb(key: string): Buffer {
    const b = Buffer.from(key, 'utf8');
    if (b.length > MAX_KEY_BYTES) {
      throw this.#fail(
        new ConfigError(
          `DurableStore: a key of ${b.length} bytes is longer than the ${MAX_KEY_BYTES} the durable store accepts`,
          { context: { field: 'key' } },
        ),
      );
    }
    return b;
  }

  /** The entry at `key` (a copy: callers may change it), from the cache or the database. */
  #raw(key: string): Entry | undefined {
    let e = this.#cache.get(key);
    if (e === undefined) {
      e = (this.#kv.get(this.#kb(key)) as Entry | undefined) ?? null;
      this.#remember(key, e);
    }
    return e === null ? undefined : { ...e };
  }

  #putEntry(key: string, e: Entry): void {
    this.#kv.putSync(this.#kb(key), e);
    this.#remember(key, { ...e });
  }

  #remember(key: string, e: Entry | null): void {
    if (this.#cache.size >= this.#cacheMax && !this.#cache.has(key)) {
      const oldest = this.#cache.keys().next();
      if (!oldest.done) this.#cache.delete(oldest.value);
    }
    this.#cache.set(key, e);
  }

  #live(key: string): Entry | undefined {
    const e = this.#raw(key);
    if (!e) return undefined;
    if (e.x !== 0 && e.x <= this.now()) return undefined;
    return e;
  }

  #zset(key: string): ZsetEntry | undefined {
    const e = this.#live(key);
    if (!e) return undefined;
    if (e.t !== 'z') throw this.#fail(wrongType(key));
    return e;
  }

  /** Writes a new entry over whatever `key` held (live or expired): its members go with it. */
  #replace(key: string, e: Entry): void {
    const kb = this.#kb(key);
    const old = this.#raw(key);
    if (old?.t === 'z') this.#dropMembers(old.id);
    this.#putEntry(key, e);
    this.#index(kb, old?.x ?? 0, e.x);
  }

  /**
   * Moves a key in the expiry index from the bucket of `from` to the bucket of `to` (0: none).
   * Buckets are {@link EXPIRY_BUCKET_MS} wide, so a TTL refreshed often rarely writes here.
   */
  #index(kb: Buffer, from: number, to: number): void {
    const a = from === 0 ? 0 : bucketOf(from);
    const b = to === 0 ? 0 : bucketOf(to);
    if (a === b) return;
    if (a !== 0) this.#exp.removeSync(Buffer.concat([encodeScore(a), kb]));
    if (b !== 0) this.#exp.putSync(Buffer.concat([encodeScore(b), kb]), null);
  }

  /** Deletes `key` whatever its state (live or expired), with its members and expiry entry. */
  #dropRaw(key: string): void {
    const e = this.#raw(key);
    if (!e) return;
    const kb = this.#kb(key);
    this.#kv.removeSync(kb);
    this.#remember(key, null);
    this.#index(kb, e.x, 0);
    if (e.t === 'z') this.#dropMembers(e.id);
  }

  #dropMembers(id: number): void {
    const start = encodeId(id);
    const end = encodeId(id + 1);
    for (const db of [this.#zs, this.#zm]) {
      const doomed = [...db.getRange({ start, end })].map((r) => r.key);
      for (const k of doomed) db.removeSync(k);
    }
  }

  #shrink(key: string, e: ZsetEntry, by: number): void {
    e.n -= by;
    if (e.n > 0) this.#putEntry(key, e);
    else this.#dropRaw(key);
  }

  #fail(error: unknown): unknown {
    if (this.#depth > 0) this.#failed = true;
    return error;
  }

  #nextId(): number {
    const id = ((this.#meta.get(ZSET_ID) as number | undefined) ?? 0) + 1;
    this.#meta.putSync(ZSET_ID, id);
    return id;
  }
}
