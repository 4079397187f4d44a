/**
 * What `mocra` reads from (and, for a replay, writes to) a deployment's Redis: runs through
 * their index and records, a run's retries, leases and dead letters, and the dead-letter
 * streams of the three queues. Everything goes through the library's own key layout and scripts.
 * `--redis` may name any node of a Redis Cluster: the command finds out (`INFO cluster`) and
 * reads the whole cluster through it.
 */
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import { toRunStatus } from '../chain/engine/runs.js';
import type { RunStatus } from '../chain/engine/types.js';
import { createRedisStreamQueues } from '../chain/stream-queues.js';
import { RedisChainState } from '../chain/state/redis-chain-state.js';
import { BackendUnavailableError, RunNotFoundError } from '../errors.js';
import { ChainKeyBuilder } from '../keys/chain-key-builder.js';
import { namespacePrefix } from '../keys/namespace.js';
import { RedisBackend } from '../store/redis-backend.js';
import {
  deadLetterView,
  knownRuns,
  LEASE_BATCH,
  QUEUE_NAMES,
  retryView,
  runNotFound,
  runNodeIds,
  type DeadLetterView,
  type LeaseView,
  type QueueName,
  type RetryView,
  type Source,
} from './source.js';

/** The Redis URL without its login info (for messages). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(an invalid Redis URL)';
  }
}

/** One try to connect, 2 s at most, no queueing while offline. */
const ONE_TRY: RedisOptions = {
  lazyConnect: true,
  connectTimeout: 2_000,
  maxRetriesPerRequest: 1,
  enableOfflineQueue: false,
  retryStrategy: () => null,
};

/**
 * Connects `client` and runs `check` (one try).
 * @throws {@link BackendUnavailableError} naming the server (never its password).
 */
async function connectOnce(
  client: Redis | Cluster,
  url: string,
  check: () => Promise<void>,
): Promise<void> {
  // the socket's own error (ECONNREFUSED, ENOTFOUND …) says more than connect()'s
  let cause: Error | undefined;
  client.on('error', (error: Error) => (cause ??= error));
  try {
    await client.connect();
    await check();
  } catch (error) {
    client.disconnect();
    const why = (cause ?? (error as Error)).message;
    throw new BackendUnavailableError(`cannot reach Redis at ${safeUrl(url)}: ${why}`, {
      cause: cause ?? error,
    });
  }
}

/** Reads a deployment's runs and dead letters from its Redis. @internal */
export class RedisSource implements Source {
  readonly #client: Redis | Cluster;
  readonly #prefix: string;
  readonly #storePrefix: string;
  readonly #keys: ChainKeyBuilder;
  readonly #state: RedisChainState;

  private constructor(client: Redis | Cluster, prefix: string, keys: ChainKeyBuilder) {
    this.#client = client;
    // the store's keyPrefix names a namespace: the same text RedisBackend puts before every key
    this.#prefix = namespacePrefix(prefix, 'mocra', '--prefix');
    this.#storePrefix = prefix;
    this.#keys = keys;
    this.#state = new RedisChainState(new RedisBackend({ redis: client, keyPrefix: prefix }), {
      keys,
    });
  }

  /**
   * Connects (one try, 2 s at most): to the server `url` names, or to the whole Redis Cluster it is
   * a node of.
   * @throws {@link BackendUnavailableError} naming the server (never its password).
   */
  static async open(url: string, prefix: string, chainPrefix: string): Promise<RedisSource> {
    const client = new Redis(url, ONE_TRY);
    let cluster = false;
    await connectOnce(client, url, async () => {
      cluster = /^cluster_enabled:1\b/m.test(await client.info('cluster'));
    });
    const keys = new ChainKeyBuilder({ prefix: chainPrefix });
    if (!cluster) return new RedisSource(client, prefix, keys);
    // a node of a Cluster: read the whole cluster through it (its login info and TLS carry over)
    const { host, port, username, password, tls } = client.options;
    client.disconnect();
    const seed: ClusterNode = { host: host ?? '127.0.0.1', port: port ?? 6379 };
    const redisOptions: RedisOptions = { ...ONE_TRY };
    if (username) redisOptions.username = username;
    if (password) redisOptions.password = password;
    if (tls) redisOptions.tls = tls;
    const whole = new Cluster([seed], {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: () => null,
      redisOptions,
    });
    await connectOnce(whole, url, async () => {
      await whole.ping();
    });
    return new RedisSource(whole, prefix, keys);
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    this.#client.disconnect();
  }

  #k(key: string): string {
    return this.#prefix + key;
  }

  /** The runs whose record has not expired, most recently indexed last. */
  async runs(): Promise<RunStatus[]> {
    const now = Date.now();
    const ids = await this.#client.zrangebyscore(this.#k(this.#keys.runs()), now, '+inf');
    return knownRuns(ids, (runId) => this.run(runId));
  }

  /**
   * One run's status.
   * @throws {@link RunNotFoundError} when the run is unknown here (or expired).
   */
  async run(runId: string): Promise<RunStatus> {
    const taskId = await this.#client.get(this.#k(this.#keys.runIndex(runId)));
    const snap = taskId === null ? null : await this.#state.runRead(taskId, runId);
    if (snap === null) throw new RunNotFoundError(runNotFound(runId, 'wrong --prefix'));
    return toRunStatus(snap);
  }

  /** The retries of a run waiting in its task's retry set. */
  async retries(taskId: string, runId: string): Promise<RetryView[]> {
    const raw = await this.#client.zrange(
      this.#k(this.#keys.retryZset(taskId)),
      0,
      -1,
      'WITHSCORES',
    );
    const out: RetryView[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const view = retryView(raw[i]!, Number(raw[i + 1]), runId);
      if (view) out.push(view);
    }
    return out;
  }

  /**
   * The leases held on nodes of a run: its nodes (from the run's key index) whose record says
   * `processing`, read in pipelined batches.
   */
  async leases(taskId: string, runId: string): Promise<LeaseView[]> {
    const suffixes = await this.#client.zrange(this.#k(this.#keys.runKeys(taskId, runId)), 0, -1);
    const nodeIds = runNodeIds(suffixes);
    const out: LeaseView[] = [];
    for (let i = 0; i < nodeIds.length; i += LEASE_BATCH) {
      const batch = nodeIds.slice(i, i + LEASE_BATCH);
      const pipeline = this.#client.pipeline();
      for (const nodeId of batch)
        pipeline.hmget(
          this.#k(this.#keys.ptmById(taskId, nodeId)),
          'status',
          'owner',
          'version',
          'epoch',
          'lease_until',
        );
      const replies = (await pipeline.exec()) ?? [];
      batch.forEach((nodeId, j) => {
        const [error, fields] = replies[j] ?? [null, null];
        if (error) throw error;
        const [status, owner, version, epoch, until] = fields as (string | null)[];
        if (status !== 'processing') return;
        out.push({
          nodeId,
          status,
          owner: owner ?? '',
          version: Number(version ?? 0),
          epoch: Number(epoch ?? 0),
          until: Number(until ?? 0),
        });
      });
    }
    return out.sort((a, b) => a.until - b.until);
  }

  /** The dead letters of the queues (oldest first, at most `max` per queue). */
  async deadLetters(queues: readonly QueueName[], max = 1_000): Promise<DeadLetterView[]> {
    const out: DeadLetterView[] = [];
    for (const queue of queues.length > 0 ? queues : QUEUE_NAMES) {
      const rows = await this.#client.xrange(
        this.#k(this.#keys.queueDeadLetters(queue)),
        '-',
        '+',
        'COUNT',
        max,
      );
      for (const [id, fields] of rows) {
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
        const letter = {
          queue,
          id,
          reason: f.reason ?? '',
          deliveries: Number(f.deliveries ?? 0),
          originalId: f.originalId ?? '',
        };
        out.push(deadLetterView(letter, f.payload ?? ''));
      }
    }
    return out;
  }

  /**
   * Publishes dead letters to their queue again and removes them from the dead-letter stream;
   * returns those replayed.
   */
  async replay(letters: readonly DeadLetterView[]): Promise<DeadLetterView[]> {
    if (letters.length === 0) return [];
    const queues = createRedisStreamQueues({
      client: this.#client,
      keyPrefix: this.#storePrefix,
      keys: this.#keys,
      consumer: 'mocra-cli',
    });
    const done: DeadLetterView[] = [];
    try {
      for (const letter of letters) {
        const deadKey = this.#k(this.#keys.queueDeadLetters(letter.queue));
        const rows = await this.#client.xrange(deadKey, letter.id, letter.id);
        const fields = rows[0]?.[1] ?? [];
        const at = fields.indexOf('payload');
        if (at < 0) continue; // replayed by someone else meanwhile
        await queues[letter.queue].push(fields[at + 1]!);
        await this.#client.xdel(deadKey, letter.id);
        done.push(letter);
      }
    } finally {
      await Promise.all(QUEUE_NAMES.map((q) => queues[q].shutdown()));
    }
    return done;
  }
}
