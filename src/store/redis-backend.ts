/**
 * The Redis {@link CacheService} on ioredis (one server or a Redis Cluster), and the runner of
 * the compiled scripts in `lua/`.
 */
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { BackendUnavailableError, ScriptError } from '../errors.js';
import {
  invalid,
  invalidCombination,
  optionalBoolean,
  optionalNumber,
  readOptions,
} from '../internal/validate.js';
import { MAX_TIMER_DELAY_MS } from '../internal/clock.js';
import { readLogger, type Logger } from '../observe/logger.js';
import { StoreArgs } from './args.js';
import { CommandDeadline } from './command-deadline.js';
import { classifyRedisError } from './redis-errors.js';
import { keySlot } from './key-slot.js';
import { WriteCoalescer } from './write-coalescer.js';
import { ioredis } from './ioredis.js';
import { LUA_SCRIPTS, type LuaScriptSource } from './lua-scripts.generated.js';
import type {
  CacheService,
  CacheServiceBaseOptions,
  RangeOptions,
  RunScriptOptions,
  ScriptReply,
  ScriptRunner,
  SetOptions,
} from './types.js';

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

/** Options of {@link RedisBackend}. */
export interface RedisBackendOptions extends Omit<CacheServiceBaseOptions, 'clock'> {
  /**
   * A `redis://` URL, ioredis options, `{ cluster: [...] }` seed nodes, or an ioredis `Redis` or
   * `Cluster` client (which the backend will not close).
   */
  redis: RedisConnection;
  /**
   * Reject a script call whose KEYS fall in more than one Redis Cluster slot. Cheap; on by
   * default so that code that works on one server also works on a cluster. On a cluster the
   * check always runs (a cross-slot call could only fail there). @defaultValue true
   */
  assertSameSlot?: boolean;
  /**
   * Longest wait for Redis to answer one command, in ms; then the call rejects with a retryable
   * BackendUnavailableError (the command is not sent again: it may still run). Set as ioredis'
   * `commandTimeout` on a client the backend creates; enforced by the backend for a client passed
   * in. Also bounds `close()`. 0 turns the bound off. @defaultValue 5000
   */
  commandTimeoutMs?: number;
}

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
  retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
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

/**
 * Maps an ioredis failure to a mocra error (same codes as the local backend).
 * @deprecated Use {@link classifyRedisError}, the one classifier every Redis caller uses.
 */
export function mapRedisError(error: unknown, key?: string): Error {
  return classifyRedisError(error, key === undefined ? {} : { key });
}

/**
 * The Redis {@link CacheService} (`mode: 'distributed'`), and the runner of mocra's scripts:
 * EVALSHA, reloading on NOSCRIPT (server restart, failover, SCRIPT FLUSH) and retrying once.
 * No other failure is retried: after a timeout the script may have run.
 *
 * Runs on one server or on a Redis Cluster (pass `{ cluster: [...] }` or an ioredis `Cluster`):
 * single-key commands and scripts are routed by their (first) key; a script's KEYS must share
 * one slot (hash tags), `del` and cross-slot `mget` go key by key, `scan` visits every master,
 * and NOSCRIPT reloads the script on every master.
 *
 * @example
 * ```ts
 * const store = new RedisBackend({ redis: 'redis://127.0.0.1:6379', keyPrefix: 'app:' });
 * await store.connect();
 * const clustered = new RedisBackend({ redis: { cluster: [{ host: '127.0.0.1', port: 7000 }] } });
 * await clustered.connect();
 * ```
 */
export class RedisBackend implements CacheService, ScriptRunner {
  /** Always `'distributed'`. */
  readonly mode = 'distributed' as const;
  /** The text every full key starts with: the `keyPrefix` as a namespace (see `namespacePrefix`). */
  readonly keyPrefix: string;
  /** The ioredis client commands go through: a `Redis`, or a `Cluster` when {@link RedisBackend.isCluster}. */
  readonly client: Redis | Cluster;
  /** Whether {@link RedisBackend.client} is a Redis Cluster client. */
  readonly isCluster: boolean;
  readonly #ownsClient: boolean;
  readonly #assertSameSlot: boolean;
  readonly #logger: Logger;
  readonly #args: StoreArgs;
  readonly #commandTimeoutMs: number;
  /** Bounds calls through a client passed in (one the backend creates has `commandTimeout`). */
  readonly #deadline: CommandDeadline;
  readonly #coalescer = new WriteCoalescer();

  /** @throws {@link ConfigError} on invalid options. */
  constructor(options: RedisBackendOptions) {
    const o = readOptions(W, options, [
      'redis',
      'keyPrefix',
      'logger',
      'assertSameSlot',
      'commandTimeoutMs',
    ]);
    this.#args = new StoreArgs(W, o.keyPrefix);
    this.keyPrefix = this.#args.prefix;
    this.#assertSameSlot = optionalBoolean(W, 'assertSameSlot', o.assertSameSlot, true);
    this.#logger = readLogger(W, 'logger', o.logger);
    this.#commandTimeoutMs = optionalNumber(W, 'commandTimeoutMs', o.commandTimeoutMs, 5_000, {
      integer: true,
      min: 0,
      max: MAX_TIMER_DELAY_MS,
    });
    const timeout: RedisOptions =
      this.#commandTimeoutMs > 0 ? { commandTimeout: this.#commandTimeoutMs } : {};
    const r = o.redis;
    // a Redis or Cluster client is client-like: no need to load ioredis to recognise one
    if (isClientLike(r)) {
      this.client = r as Redis | Cluster;
      this.#ownsClient = false;
    } else if (typeof r === 'string') {
      if (!/^rediss?:\/\//.test(r)) invalid(W, 'redis', 'a redis:// or rediss:// URL', r);
      this.client = new (ioredis().Redis)(r, { ...timeout, ...SAFE_CLIENT_OPTIONS });
      this.#ownsClient = true;
    } else if (r !== null && typeof r === 'object' && 'cluster' in r) {
      this.client = createCluster(r as RedisClusterConnection, timeout);
      this.#ownsClient = true;
    } else if (r !== null && typeof r === 'object') {
      this.client = new (ioredis().Redis)({
        ...(r as RedisOptions),
        ...timeout,
        ...SAFE_CLIENT_OPTIONS,
      });
      this.#ownsClient = true;
    } else {
      invalid(
        W,
        'redis',
        'a URL, ioredis options, { cluster: [...] }, or an ioredis Redis or Cluster client',
        r,
      );
    }
    this.#deadline = new CommandDeadline(this.#ownsClient ? 0 : this.#commandTimeoutMs);
    this.isCluster = (this.client as { isCluster?: unknown }).isCluster === true;
    if (this.#ownsClient) {
      // connection errors surface on commands as BackendUnavailableError; log, never crash
      let lastLogged = 0;
      const log = (error: Error) => {
        const now = Date.now();
        if (now - lastLogged < 5_000) return;
        lastLogged = now;
        this.#logger.warn({ error: error.message }, 'mocra: redis connection error');
      };
      this.client.on('error', log);
      if (this.isCluster) this.client.on('node error', log);
    } else if (this.isCluster) {
      const given = (this.client as Cluster).options;
      if ((given?.retryDelayOnFailover ?? 100) > 0) {
        this.#logger.warn(
          {},
          'mocra: the given Cluster client resends a command after its connection closed (retryDelayOnFailover > 0), so a script could run twice; set retryDelayOnFailover: 0',
        );
      }
    }
  }

  /** Connects (when the backend created the client) and checks the server answers. */
  async connect(): Promise<void> {
    this.#args.open();
    await this.#run(undefined, async () => {
      if (this.#ownsClient && this.client.status === 'wait') await this.client.connect();
      await this.client.ping();
    });
  }

  async get(key: string): Promise<string | null> {
    const k = this.#args.key('get', key);
    return this.#run(k, () => this.client.get(k));
  }

  async set(key: string, value: string, options?: SetOptions): Promise<void> {
    const k = this.#args.key('set', key);
    const { value: v, ttlMs } = this.#args.value('set', value, options);
    await this.#run(k, () =>
      ttlMs === undefined ? this.client.set(k, v) : this.client.set(k, v, 'PX', ttlMs),
    );
  }

  async setNX(key: string, value: string, options?: SetOptions): Promise<boolean> {
    const k = this.#args.key('setNX', key);
    const { value: v, ttlMs } = this.#args.value('setNX', value, options);
    const reply = await this.#run(k, () =>
      ttlMs === undefined ? this.client.set(k, v, 'NX') : this.client.set(k, v, 'PX', ttlMs, 'NX'),
    );
    return reply === 'OK';
  }

  async del(...keys: string[]): Promise<number> {
    const full = this.#args.keys('del', keys);
    if (full.length === 0) return 0;
    // one DEL per key: keys of different cluster slots may not share a command
    const counts = await this.#run(undefined, () =>
      Promise.all(full.map((k) => this.client.del(k))),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  async incr(key: string, by?: number): Promise<number> {
    const k = this.#args.key('incr', key);
    const n = this.#args.increment('incr', by);
    const result = await this.#run(k, () => this.client.incrby(k, n));
    if (Number.isSafeInteger(result)) return result;
    // beyond 2^53 ioredis' reply parser rounds differently from Number(text): read the exact
    // decimal and convert it the way the local backend does
    const text = await this.#run(k, () => this.client.get(k));
    return text === null ? result : Number(text);
  }

  async mget(keys: string[]): Promise<(string | null)[]> {
    const full = this.#args.keys('mget', keys);
    if (full.length === 0) return [];
    const slot = keySlot(full[0]!);
    if (full.every((k) => keySlot(k) === slot))
      return this.#run(undefined, () => this.client.mget(full));
    return this.#run(undefined, () =>
      Promise.all(
        full.map((k) =>
          this.client
            .get(k)
            .catch((e: unknown) => (String(e).includes('WRONGTYPE') ? null : Promise.reject(e))),
        ),
      ),
    );
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const k = this.#args.key('expire', key);
    const ttl = this.#args.ttl('expire', ttlMs);
    return (await this.#run(k, () => this.client.pexpire(k, ttl))) === 1;
  }

  async ttl(key: string): Promise<number> {
    const k = this.#args.key('ttl', key);
    return this.#run(k, () => this.client.pttl(k));
  }

  async zadd(key: string, score: number, member: string): Promise<number> {
    const k = this.#args.key('zadd', key);
    const s = this.#args.score('zadd', score);
    const m = this.#args.text('zadd', member, 'member');
    return Number(await this.#run(k, () => this.client.zadd(k, formatScore(s), m)));
  }

  async zrangeByScore(
    key: string,
    min: number,
    max: number,
    options?: RangeOptions,
  ): Promise<string[]> {
    const q = this.#args.rangeQuery('zrangeByScore', key, min, max, options);
    const [k, lo, hi] = [q.key, formatScore(q.lo), formatScore(q.hi)];
    return this.#run(k, () =>
      q.offset === 0 && q.count < 0
        ? this.client.zrangebyscore(k, lo, hi)
        : this.client.zrangebyscore(k, lo, hi, 'LIMIT', q.offset, q.count),
    );
  }

  async zremRangeByScore(key: string, min: number, max: number): Promise<number> {
    const k = this.#args.key('zremRangeByScore', key);
    const [lo, hi] = this.#args.scores('zremRangeByScore', min, max).map(formatScore);
    return this.#run(k, () => this.client.zremrangebyscore(k, lo!, hi!));
  }

  async *scan(prefix: string): AsyncIterable<string> {
    this.#args.open();
    const p = this.#args.prefix + this.#args.text('scan', prefix, 'prefix');
    const pattern = `${escapeGlob(p)}*`;
    const seen = new Set<string>();
    // on a cluster every master holds its own keys: scan each of them
    for (const node of this.#masters()) {
      let cursor = '0';
      do {
        const [next, keys] = await this.#run(undefined, () =>
          node.scan(cursor, 'MATCH', pattern, 'COUNT', 500),
        );
        cursor = next;
        for (const key of keys) {
          if (seen.has(key)) continue; // SCAN may return a key twice
          seen.add(key);
          yield key.slice(this.keyPrefix.length);
        }
      } while (cursor !== '0');
    }
  }

  /**
   * Runs a compiled script by name. `keys` are relative (the prefix is added). Replies must be
   * `[code, msg, ...payload]` of integers and strings. A script that fails for any reason but
   * NOSCRIPT is not sent again: after a timeout or a dropped connection it may have run.
   *
   * @throws {@link ConfigError} when `keys` or `args` is not an array of strings (and numbers).
   * @throws {@link ScriptError} for an unknown script, a script error or a malformed reply.
   * @throws {@link BackendUnavailableError} when Redis cannot be reached or did not answer
   *   within `commandTimeoutMs`.
   */
  async runScript(
    name: string,
    keys: string[],
    args: (string | number)[],
    options?: RunScriptOptions,
  ): Promise<ScriptReply> {
    this.#args.open();
    const script = Object.hasOwn(LUA_SCRIPTS, name)
      ? (LUA_SCRIPTS as Record<string, LuaScriptSource>)[name]
      : undefined;
    if (!script)
      throw new ScriptError(`unknown script ${JSON.stringify(String(name))}`, {
        context: { script: String(name) },
      });
    const full = this.#args.keys('runScript', keys);
    const argv = scriptArgs(args);
    if (
      ((this.#assertSameSlot && options?.crossSlot !== true) || this.isCluster) &&
      full.length > 1
    ) {
      // fast path: keys that share one non-empty hash tag are in one slot, no CRC needed
      const tag = hashTag(full[0]!);
      const slot = tag !== null && full.every((k) => hashTag(k) === tag) ? -1 : keySlot(full[0]!);
      const other = slot === -1 ? undefined : full.find((k) => keySlot(k) !== slot);
      if (other !== undefined) {
        throw new ScriptError(
          `script ${name}: keys ${JSON.stringify(full[0])} and ${JSON.stringify(other)} are in different cluster slots (${slot} and ${keySlot(other)}); all KEYS of a script must share one hash tag`,
          { context: { script: name, slots: [slot, keySlot(other)] } },
        );
      }
    }
    let reply: unknown;
    try {
      this.#coalesce();
      reply = await this.#deadline.run(() =>
        this.client.evalsha(script.sha1, full.length, ...full, ...argv),
      );
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT'))
        throw classifyRedisError(error, { script: name });
      this.#logger.info({ script: name }, 'mocra: reloading script after NOSCRIPT');
      try {
        await this.#deadline.run(() => this.#loadScript(script.source));
        reply = await this.#deadline.run(() =>
          this.client.evalsha(script.sha1, full.length, ...full, ...argv),
        );
      } catch (retryError) {
        throw classifyRedisError(retryError, { script: name });
      }
    }
    return decodeReply(name, reply);
  }

  /**
   * Closes the client the backend created (QUIT, or a hard disconnect when Redis has not answered
   * within `commandTimeoutMs`, 5 s when the bound is off). A client passed in stays open. Further
   * calls fail with {@link ClosedError}. Never rejects.
   */
  async close(): Promise<void> {
    if (!this.#args.close()) return;
    if (!this.#ownsClient) return;
    const client = this.client;
    const boundMs = this.#commandTimeoutMs > 0 ? this.#commandTimeoutMs : 5_000;
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

  /** The servers that hold keys: the client itself, or every master of the cluster. */
  #masters(): Redis[] {
    if (!this.isCluster) return [this.client as Redis];
    const masters = (this.client as Cluster).nodes('master');
    if (masters.length === 0) {
      throw new BackendUnavailableError('redis is unavailable: no cluster master is known yet', {});
    }
    return masters;
  }

  /**
   * Loads a script after NOSCRIPT. A script cache is per server: on a cluster, load it on every
   * master (a master that fails here is left to the retry, which reports its own error).
   */
  async #loadScript(source: string): Promise<void> {
    if (!this.isCluster) {
      await this.client.script('LOAD', source);
      return;
    }
    const results = await Promise.allSettled(
      this.#masters().map((node) => node.script('LOAD', source)),
    );
    if (results.every((r) => r.status === 'rejected')) {
      throw (results[0] as PromiseRejectedResult).reason;
    }
  }

  /** Scripts written in one tick share socket writes (see WriteCoalescer); one server only. */
  #coalesce(): void {
    if (this.isCluster) return;
    const client = this.client as Redis;
    this.#coalescer.beforeWrite(client.status === 'ready' ? client.stream : null);
  }

  async #run<R>(key: string | undefined, fn: () => Promise<R>): Promise<R> {
    try {
      return await this.#deadline.run(fn);
    } catch (error) {
      throw classifyRedisError(
        error,
        key === undefined ? {} : { key: key.slice(this.keyPrefix.length) },
      );
    }
  }
}

/** A script's ARGV: an array of strings and finite numbers. */
function scriptArgs(args: unknown): string[] {
  if (!Array.isArray(args))
    invalid(`${W}.runScript`, 'args', 'an array of strings and numbers', args);
  return args.map((a, i) => {
    if (typeof a === 'string') return a;
    if (typeof a === 'number' && Number.isFinite(a)) return String(a);
    return invalid(`${W}.runScript`, `args[${i}]`, 'a string or a finite number', a);
  });
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
    clusterRetryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
    ...extra,
    ...SAFE_CLUSTER_OPTIONS,
    redisOptions: { ...timeout, ...(extra.redisOptions ?? {}), ...SAFE_CLUSTER_NODE_OPTIONS },
  });
}

/** Decodes a `[code, msg, ...payload]` reply; anything else is a ScriptError. */
export function decodeReply(name: string, reply: unknown): ScriptReply {
  if (
    !Array.isArray(reply) ||
    reply.length < 2 ||
    typeof reply[0] !== 'number' ||
    typeof reply[1] !== 'string'
  ) {
    throw new ScriptError(
      `script ${name} returned a malformed reply: ${JSON.stringify(reply)?.slice(0, 200)}`,
      {
        context: { script: name },
      },
    );
  }
  const payload = reply.slice(2) as unknown[];
  for (const item of payload) {
    if (typeof item !== 'number' && typeof item !== 'string') {
      throw new ScriptError(
        `script ${name} returned a non-scalar payload item: ${JSON.stringify(item)}`,
        {
          context: { script: name },
        },
      );
    }
  }
  return { code: reply[0], msg: reply[1], payload: payload as (string | number)[] };
}

function formatScore(score: number): string {
  if (score === Infinity) return '+inf';
  if (score === -Infinity) return '-inf';
  return String(score);
}

function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** The hash tag of a key (the text between its first `{` and the next `}`), or null if none. */
function hashTag(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : null;
}
