/**
 * The in-process {@link CacheService}: a {@link LocalStore} behind the async interface, with a
 * key prefix and the same argument checks as the Redis backend.
 */
import { ConfigError } from '../errors.js';
import { systemClock } from '../internal/clock.js';
import {
  optionalClock,
  optionalNumber,
  optionalString,
  readOptions,
} from '../internal/validate.js';
import { silentLogger, type Logger } from '../observe/logger.js';
import {
  checkIncrement,
  checkKey,
  checkRange,
  checkScore,
  checkTtl,
  checkTtlArg,
  checkValue,
} from './args.js';
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
  readonly keyPrefix: string;
  /**
   * The synchronous store underneath. Keys here are full keys (with the prefix). Calls made in
   * one synchronous block are atomic within the process.
   * @internal
   */
  readonly store: LocalStore;
  readonly #logger: Logger;
  #closed = false;

  /** @throws {@link ConfigError} on invalid options. */
  constructor(options: LocalBackendOptions = {}) {
    const o = readOptions(W, options, ['keyPrefix', 'logger', 'clock', 'sweepIntervalMs']);
    this.keyPrefix = optionalString(W, 'keyPrefix', o.keyPrefix, '', { allowEmpty: true });
    this.#logger = o.logger ?? silentLogger;
    this.store = new LocalStore({
      clock: optionalClock(W, 'clock', o.clock, systemClock),
      sweepIntervalMs: optionalNumber(W, 'sweepIntervalMs', o.sweepIntervalMs, 1000, {
        integer: true,
        min: 0,
      }),
    });
  }

  async get(key: string): Promise<string | null> {
    if (this.#closed || typeof key !== 'string') return this.store.get(this.#k('get', key));
    return this.store.get(this.keyPrefix + key);
  }

  async set(key: string, value: string, options?: SetOptions): Promise<void> {
    // the common call (open, string key and value, no options) builds no message text
    if (
      !this.#closed &&
      typeof key === 'string' &&
      typeof value === 'string' &&
      options === undefined
    ) {
      this.store.set(this.keyPrefix + key, value);
      return;
    }
    const k = this.#k('set', key);
    const v = checkValue(`${W}.set`, value);
    this.store.set(k, v, checkTtl(`${W}.set`, options));
  }

  async setNX(key: string, value: string, options?: SetOptions): Promise<boolean> {
    const k = this.#k('setNX', key);
    const v = checkValue(`${W}.setNX`, value);
    return this.store.setNX(k, v, checkTtl(`${W}.setNX`, options));
  }

  async del(...keys: string[]): Promise<number> {
    this.#open();
    if (keys.length === 0) return 0;
    return this.store.del(
      ...keys.map((key, i) => this.keyPrefix + checkKey(`${W}.del`, key, `keys[${i}]`)),
    );
  }

  async incr(key: string, by?: number): Promise<number> {
    const k = this.#k('incr', key);
    return this.store.incr(k, checkIncrement(`${W}.incr`, by));
  }

  async mget(keys: string[]): Promise<(string | null)[]> {
    this.#open();
    if (!Array.isArray(keys))
      throw new ConfigError(`${W}.mget: expected \`keys\` to be an array`, {
        context: { field: 'keys' },
      });
    return this.store.mget(
      keys.map((key, i) => this.keyPrefix + checkKey(`${W}.mget`, key, `keys[${i}]`)),
    );
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const k = this.#k('expire', key);
    return this.store.expire(k, checkTtlArg(`${W}.expire`, ttlMs));
  }

  async ttl(key: string): Promise<number> {
    return this.store.ttl(this.#k('ttl', key));
  }

  async zadd(key: string, score: number, member: string): Promise<number> {
    const k = this.#k('zadd', key);
    const s = checkScore(`${W}.zadd`, 'score', score);
    return this.store.zadd(k, s, checkKey(`${W}.zadd`, member, 'member'));
  }

  async zrangeByScore(
    key: string,
    min: number,
    max: number,
    options?: RangeOptions,
  ): Promise<string[]> {
    const k = this.#k('zrangeByScore', key);
    const lo = checkScore(`${W}.zrangeByScore`, 'min', min);
    const hi = checkScore(`${W}.zrangeByScore`, 'max', max);
    const { offset, count } = checkRange(`${W}.zrangeByScore`, options);
    return this.store.zrangeByScore(k, lo, hi, offset, count);
  }

  async zremRangeByScore(key: string, min: number, max: number): Promise<number> {
    const k = this.#k('zremRangeByScore', key);
    const lo = checkScore(`${W}.zremRangeByScore`, 'min', min);
    const hi = checkScore(`${W}.zremRangeByScore`, 'max', max);
    return this.store.zremRangeByScore(k, lo, hi);
  }

  async *scan(prefix: string): AsyncIterable<string> {
    this.#open();
    const p = this.keyPrefix + checkKey(`${W}.scan`, prefix, 'prefix');
    for (const key of this.store.keys(p)) yield key.slice(this.keyPrefix.length);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.store.close();
    this.#logger.debug('mocra cache service closed', { mode: this.mode });
  }

  #open(): void {
    if (this.#closed)
      throw new ConfigError(`${W}: the service is closed`, { context: { field: 'service' } });
  }

  #k(op: string, key: string): string {
    this.#open();
    return this.keyPrefix + checkKey(`${W}.${op}`, key);
  }
}
