/**
 * The Redis {@link CacheService} on ioredis (one server or a Redis Cluster): its options and its
 * key-value commands. Its connection is in redis-connection.ts, its script runner in
 * redis-scripts.ts.
 */
import type { Cluster, Redis } from 'ioredis';
import { optionalBoolean, optionalNumber, readOptions } from '../internal/validate.js';
import { MAX_TIMER_DELAY_MS } from '../internal/clock.js';
import { readLogger } from '../observe/logger.js';
import { StoreArgs } from './args.js';
import { CommandDeadline } from './command-deadline.js';
import { classifyRedisError } from './redis-errors.js';
import { keySlot } from './key-slot.js';
import {
  closeRedisClient,
  createRedisClient,
  redisMasters,
  watchRedisClient,
  type RedisConnection,
} from './redis-connection.js';
import { RedisScripts } from './redis-scripts.js';
import type {
  CacheService,
  CacheServiceBaseOptions,
  RangeOptions,
  RunScriptOptions,
  ScriptReply,
  ScriptRunner,
  SetOptions,
} from './types.js';

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
  readonly #args: StoreArgs;
  readonly #commandTimeoutMs: number;
  /** Bounds calls through a client passed in (one the backend creates has `commandTimeout`). */
  readonly #deadline: CommandDeadline;
  readonly #scripts: RedisScripts;

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
    const assertSameSlot = optionalBoolean(W, 'assertSameSlot', o.assertSameSlot, true);
    const logger = readLogger(W, 'logger', o.logger);
    this.#commandTimeoutMs = optionalNumber(W, 'commandTimeoutMs', o.commandTimeoutMs, 5_000, {
      integer: true,
      min: 0,
      max: MAX_TIMER_DELAY_MS,
    });
    const connection = createRedisClient(o.redis, this.#commandTimeoutMs);
    this.client = connection.client;
    this.#ownsClient = connection.ownsClient;
    this.#deadline = new CommandDeadline(this.#ownsClient ? 0 : this.#commandTimeoutMs);
    this.isCluster = (this.client as { isCluster?: unknown }).isCluster === true;
    watchRedisClient(connection, this.isCluster, logger);
    this.#scripts = new RedisScripts({
      client: this.client,
      isCluster: this.isCluster,
      args: this.#args,
      deadline: this.#deadline,
      logger,
      assertSameSlot,
    });
  }

  /**
   * Connects (when the backend created the client) and checks the server answers; on a Cluster,
   * that every master answers (each master's connection is open before the first command).
   */
  async connect(): Promise<void> {
    this.#args.open();
    await this.#run(undefined, async () => {
      if (this.#ownsClient && this.client.status === 'wait') await this.client.connect();
      await this.client.ping();
      if (this.isCluster)
        await Promise.all((this.client as Cluster).nodes('master').map((node) => node.ping()));
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
    for (const node of redisMasters(this.client, this.isCluster)) {
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
  runScript(
    name: string,
    keys: string[],
    args: (string | number)[],
    options?: RunScriptOptions,
  ): Promise<ScriptReply> {
    // the runner's own promise (an async method: it rejects, never throws), no wrapper per call
    return this.#scripts.run(name, keys, args, options);
  }

  /**
   * Closes the client the backend created (QUIT, or a hard disconnect when Redis has not answered
   * within `commandTimeoutMs`, 5 s when the bound is off). A client passed in stays open. Further
   * calls fail with {@link ClosedError}. Never rejects.
   */
  async close(): Promise<void> {
    if (!this.#args.close()) return;
    if (!this.#ownsClient) return;
    await closeRedisClient(
      this.client,
      this.#commandTimeoutMs > 0 ? this.#commandTimeoutMs : 5_000,
    );
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

function formatScore(score: number): string {
  if (score === Infinity) return '+inf';
  if (score === -Infinity) return '-inf';
  return String(score);
}

function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
