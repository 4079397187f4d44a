/**
 * Chooses the backend at start: Redis when `redis` is given, in-process otherwise.
 */
import { readOptions } from '../internal/validate.js';
import { readLogger } from '../observe/logger.js';
import { LocalBackend, type LocalBackendOptions } from './local-backend.js';
import { RedisBackend, type RedisConnection } from './redis-backend.js';
import type { CacheService, CacheServiceBaseOptions } from './types.js';

/** Options of {@link createCacheService}. */
export interface CacheServiceOptions extends CacheServiceBaseOptions {
  /**
   * A `redis://` URL, ioredis options, `{ cluster: [{ host, port }, ...] }` for a Redis Cluster, or
   * an ioredis `Redis` or `Cluster` client. Omit for the in-process backend.
   */
  redis?: RedisConnection;
  /** Local backend only: expiry sweep period in ms (0: lazy expiry only). @defaultValue 1000 */
  sweepIntervalMs?: number;
  /** Redis backend only: reject scripts whose keys span cluster slots. @defaultValue true */
  assertSameSlot?: boolean;
  /**
   * Redis backend only: longest wait for one command, in ms, before a retryable
   * BackendUnavailableError (see `RedisBackendOptions.commandTimeoutMs`). @defaultValue 5000
   */
  commandTimeoutMs?: number;
}

/**
 * Creates a {@link CacheService}: a connected {@link RedisBackend} (`mode: 'distributed'`) when
 * `redis` is set, else a {@link LocalBackend} (`mode: 'single_node'`). Logs the mode at info.
 *
 * @throws {@link ConfigError} on invalid options.
 * @throws {@link BackendUnavailableError} when Redis cannot be reached.
 * @example
 * ```ts
 * const service = await createCacheService({ redis: process.env.REDIS_URL, keyPrefix: 'app:' });
 * console.log(service.mode);
 * // a Redis Cluster: seed nodes (or pass an ioredis Cluster you created)
 * const clustered = await createCacheService({ redis: { cluster: [{ host: '10.0.0.1', port: 7000 }] } });
 * ```
 */
export async function createCacheService(options: CacheServiceOptions = {}): Promise<CacheService> {
  const o = readOptions('createCacheService', options, [
    'redis',
    'keyPrefix',
    'logger',
    'clock',
    'sweepIntervalMs',
    'assertSameSlot',
    'commandTimeoutMs',
  ]);
  const logger = readLogger('createCacheService', 'logger', o.logger);
  if (o.redis !== undefined && o.redis !== null && o.redis !== '') {
    const backend = new RedisBackend({
      redis: o.redis,
      ...(o.keyPrefix === undefined ? {} : { keyPrefix: o.keyPrefix }),
      ...(o.assertSameSlot === undefined ? {} : { assertSameSlot: o.assertSameSlot }),
      ...(o.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: o.commandTimeoutMs }),
      logger,
    });
    try {
      await backend.connect();
    } catch (error) {
      await backend.close();
      throw error;
    }
    logger.info(
      { mode: backend.mode, keyPrefix: backend.keyPrefix },
      'mocra cache service started',
    );
    return backend;
  }
  const local: LocalBackendOptions = { logger };
  if (o.keyPrefix !== undefined) local.keyPrefix = o.keyPrefix;
  if (o.clock !== undefined) local.clock = o.clock;
  if (o.sweepIntervalMs !== undefined) local.sweepIntervalMs = o.sweepIntervalMs;
  const backend = new LocalBackend(local);
  logger.info({ mode: backend.mode, keyPrefix: backend.keyPrefix }, 'mocra cache service started');
  return backend;
}
