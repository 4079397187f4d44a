/**
 * The in-process {@link CacheService}: a {@link LocalStore} behind the async interface, with a
 * key prefix and the same argument checks as the Redis backend.
 */
import { systemClock } from '../internal/clock.js';
import { optionalClock, optionalNumber, readOptions } from '../internal/validate.js';
import { readLogger, type Logger } from '../observe/logger.js';
import { StoreArgs } from './args.js';
import { LocalStore } from './local-store.js';
import { SyncBackend } from './sync-backend.js';
import type { CacheService, CacheServiceBaseOptions, SetOptions } from './types.js';

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
export class LocalBackend extends SyncBackend<LocalStore> implements CacheService {
  /** Always `'single_node'`. */
  readonly mode = 'single_node' as const;
  readonly #logger: Logger;
  readonly #args: StoreArgs;

  /** @throws {@link ConfigError} on invalid options. */
  constructor(options: LocalBackendOptions = {}) {
    const o = readOptions(W, options, ['keyPrefix', 'logger', 'clock', 'sweepIntervalMs']);
    const args = new StoreArgs(W, o.keyPrefix);
    const logger = readLogger(W, 'logger', o.logger);
    const store = new LocalStore({
      clock: optionalClock(W, 'clock', o.clock, systemClock),
      sweepIntervalMs: optionalNumber(W, 'sweepIntervalMs', o.sweepIntervalMs, 1000, {
        integer: true,
        min: 0,
      }),
    });
    super(args, store);
    this.#args = args;
    this.#logger = logger;
  }

  override async get(key: string): Promise<string | null> {
    // the common call (open, string key) builds no message text
    if (typeof key === 'string' && !this.#args.closed) return this.store.get(this.keyPrefix + key);
    return super.get(key);
  }

  override async set(key: string, value: string, options?: SetOptions): Promise<void> {
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
    return super.set(key, value, options);
  }

  /** Stops the expiry sweep. Further calls fail with ClosedError. */
  async close(): Promise<void> {
    if (!this.#args.close()) return;
    this.store.close();
    this.#logger.debug({ mode: this.mode }, 'mocra cache service closed');
  }
}
