/**
 * The connection of a {@link RedisBackend}: where it connects, the ioredis client it creates
 * with the settings that never send a command twice (or a check of the client it is given), the
 * logging of connection errors, the servers that hold keys, and closing.
 */
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { BackendUnavailableError } from '../errors.js';
import { invalid, invalidCombination } from '../internal/validate.js';
import type { Logger } from '../observe/logger.js';
import { ioredis } from './ioredis.js';

/**
 * A Redis Cluster for a {@link RedisBackend} to connect to. The backend creates the ioredis
 * `Cluster` client (with the no-resend settings of {@link RedisBackend}) and closes it.
 *
 * @example
 * ```ts
 * const store = new RedisBackend({
 *   redis: { cluster: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7000 }] },
 * });
 * ```
 */
export interface RedisClusterConnection {
  /** Seed nodes (`{ host, port }`, `'host:port'` or a port): at least one; the rest are discovered. */
  cluster: ClusterNode[];
  /**
   * More ioredis `Cluster` options (TLS, passwords in `redisOptions`, NAT maps, …). The settings
   * that stop commands from being resent or queued always win over these.
   */
  clusterOptions?: ClusterOptions;
}

/**
 * Where a {@link RedisBackend} connects: a `redis://` URL, ioredis options, a
 * {@link RedisClusterConnection} (`{ cluster: [...] }`), or an ioredis `Redis` or `Cluster`
 * client that you own.
 */
export type RedisConnection = string | RedisOptions | RedisClusterConnection | Redis | Cluster;

/**
 * Connection settings for clients the backend creates. Commands are never resent after a
 * connection drops (`autoResendUnfulfilledCommands: false`): a script may already have run, and
 * a blind resend could run it twice. While disconnected, commands fail at once with
 * BackendUnavailableError (`enableOfflineQueue: false`) instead of piling up; the client keeps
 * reconnecting in the background.
 */
const SAFE_CLIENT_OPTIONS: RedisOptions = {
  autoResendUnfulfilledCommands: false,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  lazyConnect: true,
  retryStrategy: reconnectDelay,
};

/**
 * The same rules for a `Cluster` the backend creates. `retryDelayOnFailover: 0`: ioredis would
 * otherwise send a command again when its node connection closed, though the node may have run
 * it. Redirections (MOVED, ASK) and TRYAGAIN/CLUSTERDOWN replies are still followed: Redis did
 * not run the command. Node connections do not reconnect on their own (ioredis drops them and
 * refreshes the slot map), so resending is not possible there.
 */
const SAFE_CLUSTER_OPTIONS: ClusterOptions = {
  enableOfflineQueue: false,
  lazyConnect: true,
  retryDelayOnFailover: 0,
};
const SAFE_CLUSTER_NODE_OPTIONS: RedisOptions = {
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
};

const W = 'RedisBackend';

/** A backend's client, and whether the backend created it (and so closes it). @internal */
export interface RedisClient {
  readonly client: Redis | Cluster;
  readonly ownsClient: boolean;
}

/**
 * The client of `redis`: the one given, or a new one with the safe settings (not connected yet)
 * and `commandTimeoutMs` (0: none) as its ioredis `commandTimeout`.
 * @throws {@link ConfigError} naming the invalid field of `redis`.
 * @internal
 */
export function createRedisClient(redis: unknown, commandTimeoutMs: number): RedisClient {
  const timeout: RedisOptions = commandTimeoutMs > 0 ? { commandTimeout: commandTimeoutMs } : {};
  const r = redis;
  // a Redis or Cluster client is client-like: no need to load ioredis to recognise one
  if (isClientLike(r)) return { client: r as Redis | Cluster, ownsClient: false };
  if (typeof r === 'string') {
    if (!/^rediss?:\/\//.test(r)) invalid(W, 'redis', 'a redis:// or rediss:// URL', r);
    return {
      client: new (ioredis().Redis)(r, { ...timeout, ...SAFE_CLIENT_OPTIONS }),
      ownsClient: true,
    };
  }
  if (r !== null && typeof r === 'object' && 'cluster' in r)
    return { client: createCluster(r as RedisClusterConnection, timeout), ownsClient: true };
  if (r !== null && typeof r === 'object') {
    return {
      client: new (ioredis().Redis)({ ...(r as RedisOptions), ...timeout, ...SAFE_CLIENT_OPTIONS }),
      ownsClient: true,
    };
  }
  return invalid(
    W,
    'redis',
    'a URL, ioredis options, { cluster: [...] }, or an ioredis Redis or Cluster client',
    r,
  );
}

/**
 * Logs the connection errors of a client the backend created (at most one line per 5 s: they
 * surface on commands as BackendUnavailableError, and must never crash the process), or warns
 * once when a given Cluster client would resend commands.
 * @internal
 */
export function watchRedisClient(
  { client, ownsClient }: RedisClient,
  isCluster: boolean,
  logger: Logger,
): void {
  if (ownsClient) {
    let lastLogged = 0;
    const log = (error: Error) => {
      const now = Date.now();
      if (now - lastLogged < 5_000) return;
      lastLogged = now;
      logger.warn({ error: error.message }, 'mocra: redis connection error');
    };
    client.on('error', log);
    if (isCluster) client.on('node error', log);
  } else if (isCluster) {
    const given = (client as Cluster).options;
    if ((given?.retryDelayOnFailover ?? 100) > 0) {
      logger.warn(
        {},
        'mocra: the given Cluster client resends a command after its connection closed (retryDelayOnFailover > 0), so a script could run twice; set retryDelayOnFailover: 0',
      );
    }
  }
}

/** The servers that hold keys: the client itself, or every master of the cluster. @internal */
export function redisMasters(client: Redis | Cluster, isCluster: boolean): Redis[] {
  if (!isCluster) return [client as Redis];
  const masters = (client as Cluster).nodes('master');
  if (masters.length === 0) {
    throw new BackendUnavailableError('redis is unavailable: no cluster master is known yet', {});
  }
  return masters;
}

/**
 * Closes a client: QUIT, or a hard disconnect when Redis has not answered within `boundMs`.
 * Never rejects.
 * @internal
 */
export async function closeRedisClient(client: Redis | Cluster, boundMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), boundMs);
  });
  try {
    const outcome = await Promise.race([client.quit().then(() => 'quit' as const), gaveUp]);
    if (outcome === 'late') client.disconnect();
  } catch {
    client.disconnect();
  } finally {
    clearTimeout(timer);
  }
}

/** Reconnection backoff of the clients the backend creates: 100 ms doubling up to 2 s. */
function reconnectDelay(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 6), 2_000);
}

function isClientLike(r: unknown): boolean {
  return r !== null && typeof r === 'object' && typeof (r as Redis).evalsha === 'function';
}

function createCluster(r: RedisClusterConnection, timeout: RedisOptions): Cluster {
  if (!Array.isArray(r.cluster) || r.cluster.length === 0)
    invalid(W, 'redis.cluster', 'a non-empty array of cluster nodes', r.cluster);
  const extra = r.clusterOptions ?? {};
  if (extra === null || typeof extra !== 'object')
    invalid(W, 'redis.clusterOptions', 'ioredis Cluster options', extra);
  for (const key of Object.keys(r)) {
    if (key !== 'cluster' && key !== 'clusterOptions')
      invalidCombination(
        W,
        [`redis.${key}`],
        `unknown option \`redis.${key}\` (a cluster connection takes \`cluster\` and \`clusterOptions\`)`,
      );
  }
  return new (ioredis().Cluster)(r.cluster, {
    clusterRetryStrategy: reconnectDelay,
    ...extra,
    ...SAFE_CLUSTER_OPTIONS,
    redisOptions: { ...timeout, ...(extra.redisOptions ?? {}), ...SAFE_CLUSTER_NODE_OPTIONS },
  });
}
