/**
 * The in-process {@link CacheService}: a {@link LocalStore} behind the async interface, with a
 * key prefix and the same argument checks as the Redis backend.
 */
import { systemClock } from '../internal/clock.js';
import { optionalClock, optionalNumber, readOptions } from '../internal/validate.js';
import { readLogger, type Logger } from '../observe/logger.js';
import { StoreArgs } from './args.js';
import { LocalStore } from './local-store.js';
import type { CacheService, CacheServiceBaseOptions, RangeOptions, SetOptions } from './types.js';

/** Options of {@link LocalBackend}. */
export interface LocalBackendOptions extends CacheServiceBaseOptions {
  /** Period of the expiry sweep in ms; 0 turns it off (expiry stays lazy). @defaultValue 1000 */
  sweepIntervalMs?: number;
}

const W = 'LocalBackend';

/**
 * The in-process {@link CacheService} (`mode: 'single_node'`). Expired keys vanish on access
 * and through one periodic, unref'd sweep; there is no timer per key.
 *
 * @example
 * ```ts
 * const store = new LocalBackend({ keyPrefix: 'app:' });
 * await store.set('greeting', 'hello', { ttlMs: 60_000 });
 * ```
 */
export class LocalBackend implements CacheService {
  /** Always `'single_node'`. */
  readonly mode = 'single_node' as const;
  /** The text every full key starts with: the `keyPrefix` as a namespace (see `namespacePrefix`). */
  readonly keyPrefix: string;
  /**
   * The synchronous store underneath. Keys here are full keys (with the prefix). Calls made in
   * one synchronous block are atomic within the process.
   * @internal
   */
  readonly store: LocalStore;
  readonly #logger: Logger;
  readonly #args: StoreArgs;

  /** @throws {@link ConfigError} on invalid options. */
  constructor(options: LocalBackendOptions = {}) {
    const o = readOptions(W, options, ['keyPrefix', 'logger', 'clock', 'sweepIntervalMs']);
    this.#args = new StoreArgs(W, o.keyPrefix);
    this.keyPrefix = this.#args.prefix;
    this.#logger = readLogger(W, 'logger', o.logger);
    this.store = new LocalStore({
      clock: optionalClock(W, 'clock', o.clock, systemClock),
      sweepIntervalMs: optionalNumber(W, 'sweepIntervalMs', o.sweepIntervalMs, 1000, {
        integer: true,
        min: 0,
      }),
    });
  }

  async get(key: string): Promise<string | null> {
    // the common call (open, string key) builds no message text
    if (typeof key === 'string' && !this.#args.closed) return this.store.get(this.keyPrefix + key);
    return this.store.get(this.#args.key('get', key));
  }

  async set(key: string, value: string, options?: SetOptions): Promise<void> {
    // the common call (open, string key and value, no options) builds no message text
    if (
      !this.#args.closed &&
      typeof key === 'string' &&
      typeof value === 'string' &&
      options === undefined
    ) {
      this.store.set(this.keyPrefix + key, value);
      return;
    }
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
    const k = this.#args.key('zrangeByScore', key);
    const [lo, hi] = this.#args.scores('zrangeByScore', min, max);
    const { offset, count } = this.#args.range('zrangeByScore', options);
    return this.store.zrangeByScore(k, lo, hi, offset, count);
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

  /** Stops the expiry sweep. Further calls fail with ClosedError. */
  async close(): Promise<void> {
    if (!this.#args.close()) return;
    this.store.close();
    this.#logger.debug({ mode: this.mode }, 'mocra cache service closed');
  }
}
