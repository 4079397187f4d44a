/**
 * The method bodies shared by the {@link CacheService}s over a synchronous store (the in-process
 * {@link LocalBackend} and the durable `DurableBackend`): each method checks its arguments with
 * {@link StoreArgs}, adds the key prefix and calls the store.
 */
import type { StoreArgs } from './args.js';
import type { CacheService, RangeOptions, SetOptions } from './types.js';

/** The synchronous store calls a {@link SyncBackend} makes (keys are full keys). */
export interface SyncKeyValueStore {
  /** See {@link CacheService.get}. */
  get(key: string): string | null;
  /** See {@link CacheService.set}. */
  set(key: string, value: string, ttlMs?: number): void;
  /** See {@link CacheService.setNX}. */
  setNX(key: string, value: string, ttlMs?: number): boolean;
  /** See {@link CacheService.del}. */
  del(...keys: string[]): number;
  /** See {@link CacheService.incr}. */
  incr(key: string, by?: number): number;
  /** See {@link CacheService.mget}. */
  mget(keys: string[]): (string | null)[];
  /** See {@link CacheService.expire}. */
  expire(key: string, ttlMs: number): boolean;
  /** See {@link CacheService.ttl}. */
  ttl(key: string): number;
  /** See {@link CacheService.zadd}. */
  zadd(key: string, score: number, member: string): number;
  /** See {@link CacheService.zrangeByScore}. */
  zrangeByScore(key: string, min: number, max: number, offset?: number, count?: number): string[];
  /** See {@link CacheService.zremRangeByScore}. */
  zremRangeByScore(key: string, min: number, max: number): number;
  /** Every live full key that starts with `prefix`. */
  keys(prefix?: string): string[];
}

/**
 * A {@link CacheService} over a synchronous store, without `mode` and `close` (each backend
 * closes its store its own way).
 * @internal
 */
export abstract class SyncBackend<S extends SyncKeyValueStore> implements Omit<
  CacheService,
  'mode' | 'durable' | 'close'
> {
  /** The text every full key starts with: the `keyPrefix` as a namespace (see `namespacePrefix`). */
  readonly keyPrefix: string;
  /**
   * The synchronous store underneath. Keys here are full keys (with the prefix). Calls made in
   * one synchronous block are atomic within the process.
   * @internal
   */
  readonly store: S;
  readonly #args: StoreArgs;

  protected constructor(args: StoreArgs, store: S) {
    this.#args = args;
    this.keyPrefix = args.prefix;
    this.store = store;
  }

  async get(key: string): Promise<string | null> {
    return this.store.get(this.#args.key('get', key));
  }

  async set(key: string, value: string, options?: SetOptions): Promise<void> {
    const k = this.#args.key('set', key);
    const { value: v, ttlMs } = this.#args.value('set', value, options);
    this.store.set(k, v, ttlMs);
  }

  async setNX(key: string, value: string, options?: SetOptions): Promise<boolean> {
    const k = this.#args.key('setNX', key);
    const { value: v, ttlMs } = this.#args.value('setNX', value, options);
    return this.store.setNX(k, v, ttlMs);
  }

  async del(...keys: string[]): Promise<number> {
    const full = this.#args.keys('del', keys);
    return full.length === 0 ? 0 : this.store.del(...full);
  }

  async incr(key: string, by?: number): Promise<number> {
    const k = this.#args.key('incr', key);
    return this.store.incr(k, this.#args.increment('incr', by));
  }

  async mget(keys: string[]): Promise<(string | null)[]> {
    return this.store.mget(this.#args.keys('mget', keys));
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const k = this.#args.key('expire', key);
    return this.store.expire(k, this.#args.ttl('expire', ttlMs));
  }

  async ttl(key: string): Promise<number> {
    return this.store.ttl(this.#args.key('ttl', key));
  }

  async zadd(key: string, score: number, member: string): Promise<number> {
    const k = this.#args.key('zadd', key);
    const s = this.#args.score('zadd', score);
    return this.store.zadd(k, s, this.#args.text('zadd', member, 'member'));
  }

  async zrangeByScore(
    key: string,
    min: number,
    max: number,
    options?: RangeOptions,
  ): Promise<string[]> {
    const q = this.#args.rangeQuery('zrangeByScore', key, min, max, options);
    return this.store.zrangeByScore(q.key, q.lo, q.hi, q.offset, q.count);
  }

  async zremRangeByScore(key: string, min: number, max: number): Promise<number> {
    const k = this.#args.key('zremRangeByScore', key);
    const [lo, hi] = this.#args.scores('zremRangeByScore', min, max);
    return this.store.zremRangeByScore(k, lo, hi);
  }

  async *scan(prefix: string): AsyncIterable<string> {
    this.#args.open();
    const p = this.#args.prefix + this.#args.text('scan', prefix, 'prefix');
    for (const key of this.store.keys(p)) yield key.slice(this.keyPrefix.length);
  }
}
