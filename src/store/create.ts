/**
 * Chooses the backend at start: Redis when `redis` is given, the durable store when `path` is,
 * in-process otherwise.
 */
import { invalidCombination, readOptions } from '../internal/validate.js';
import { readLogger } from '../observe/logger.js';
import { DurableBackend, type DurableBackendOptions } from './durable/durable-backend.js';
import { LocalBackend, type LocalBackendOptions } from './local-backend.js';
import { RedisBackend } from './redis-backend.js';
import type { RedisConnection } from './redis-connection.js';
import type { CacheService, CacheServiceBaseOptions } from './types.js';

/** Options of {@link createCacheService}. */
export interface CacheServiceOptions extends CacheServiceBaseOptions {
  /**
   * A `redis://` URL, ioredis options, `{ cluster: [{ host, port }, ...] }` for a Redis Cluster, or
   * an ioredis `Redis` or `Cluster` client. Omit for the in-process backend.
   */
  redis?: RedisConnection;
  /**
   * A data directory: the durable single-node store on LMDB (needs the optional package `lmdb`).
   * Everything written survives the process; one process per directory. Not with `redis`.
   */
  path?: string;
  /** Durable store only: flush each commit to disk (survives power loss). @defaultValue false */
  fsync?: boolean;
  /** Local and durable backends: expiry sweep period in ms (0: lazy expiry only). @defaultValue 1000 */
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
 * `redis` is set, a {@link DurableBackend} (`mode: 'single_node'`, `durable: true`) when `path`
 * is, else a {@link LocalBackend} (`mode: 'single_node'`). Logs the mode at info.
 *
 * @throws {@link ConfigError} on invalid options.
 * @throws {@link BackendUnavailableError} when Redis cannot be reached.
 * @throws {@link ConfigError} naming the path when the durable store cannot use it, or `lmdb` is
 * not installed.
 * @example
 * ```ts
 * const service = await createCacheService({ redis: process.env.REDIS_URL, keyPrefix: 'app:' });
 * console.log(service.mode);
 * // a Redis Cluster: seed nodes (or pass an ioredis Cluster you created)
 * const clustered = await createCacheService({ redis: { cluster: [{ host: '10.0.0.1', port: 7000 }] } });
 * // single node, survives restarts (npm install lmdb)
 * const durable = await createCacheService({ path: './mocra-data' });
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
    'path',
    'fsync',
  ]);
  const logger = readLogger('createCacheService', 'logger', o.logger);
  const hasRedis = o.redis !== undefined && o.redis !== null && o.redis !== '';
  if (o.path !== undefined) {
    if (hasRedis)
      invalidCombination(
        'createCacheService',
        ['redis', 'path'],
        '`redis` and `path` exclude each other: give one',
      );
    const durable: DurableBackendOptions = { path: o.path, logger };
    if (o.keyPrefix !== undefined) durable.keyPrefix = o.keyPrefix;
    if (o.clock !== undefined) durable.clock = o.clock;
    if (o.sweepIntervalMs !== undefined) durable.sweepIntervalMs = o.sweepIntervalMs;
    if (o.fsync !== undefined) durable.fsync = o.fsync;
    const backend = await DurableBackend.open(durable);
    logger.info(
      { mode: backend.mode, durable: true, keyPrefix: backend.keyPrefix },
      'mocra cache service started',
    );
    return backend;
  }
  if (hasRedis && o.redis) {
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
