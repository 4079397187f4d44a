/**
 * What `mocra` reads from (and, for a replay, writes to) a deployment's Redis: runs through
 * their index and records, a run's retries, leases and dead letters, and the dead-letter
 * streams of the three queues. Everything goes through the library's own key layout and scripts.
 */
import { Redis } from 'ioredis';
import { toRunStatus } from '../chain/engine/runs.js';
import type { RunStatus } from '../chain/engine/types.js';
import { createRedisStreamQueues } from '../chain/stream-queues.js';
import { RedisChainState } from '../chain/state/redis-chain-state.js';
import { BackendUnavailableError, RunNotFoundError } from '../errors.js';
import { ChainKeyBuilder } from '../keys/chain-key-builder.js';
import { namespacePrefix } from '../keys/namespace.js';
import { RedisBackend } from '../store/redis-backend.js';

/** The three work queues. */
export const QUEUE_NAMES = ['task', 'parser', 'error'] as const;
/** A work queue's name. */
export type QueueName = (typeof QUEUE_NAMES)[number];

/** A node retry waiting in its task's retry set. @internal */
export interface RetryView {
  moduleId: string;
  stepIdx: number;
  prefixRequest: string;
  attempt: number;
  /** When it is due (ms since the epoch, the server's clock). */
  dueAt: number;
}

/** A node lease held in a run. @internal */
export interface LeaseView {
  nodeId: string;
  status: string;
  /** The worker (and delivery) that holds it. */
  owner: string;
  version: number;
  epoch: number;
  /** When it ends (ms since the epoch, the server's clock). */
  until: number;
}

/** A dead letter of a queue. @internal */
export interface DeadLetterView {
  queue: QueueName;
  id: string;
  reason: string;
  deliveries: number;
  originalId: string;
  kind?: string;
  taskId?: string;
  runId?: string;
  moduleId?: string;
}

/** The Redis URL without its login info (for messages). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(an invalid Redis URL)';
  }
}

/** Reads a deployment's runs and dead letters from its Redis. @internal */
export class RedisSource {
  readonly #client: Redis;
  readonly #prefix: string;
  readonly #storePrefix: string;
  readonly #keys: ChainKeyBuilder;
  readonly #state: RedisChainState;

  private constructor(client: Redis, prefix: string, keys: ChainKeyBuilder) {
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
   * Connects (one try, 2 s at most).
   * @throws {@link BackendUnavailableError} naming the server (never its password).
   */
  static async open(url: string, prefix: string, chainPrefix: string): Promise<RedisSource> {
    const client = new Redis(url, {
      lazyConnect: true,
      connectTimeout: 2_000,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    // the socket's own error (ECONNREFUSED, ENOTFOUND …) says more than connect()'s
    let cause: Error | undefined;
    client.on('error', (error: Error) => (cause ??= error));
    try {
      await client.connect();
      await client.ping();
    } catch (error) {
      client.disconnect();
      const why = (cause ?? (error as Error)).message;
      throw new BackendUnavailableError(`cannot reach Redis at ${safeUrl(url)}: ${why}`, {
        cause: cause ?? error,
      });
    }
    return new RedisSource(client, prefix, new ChainKeyBuilder({ prefix: chainPrefix }));
  }

  /** Closes the connection. */
  close(): void {
    this.#client.disconnect();
  }

  #k(key: string): string {
    return this.#prefix + key;
  }

  /** The runs whose record has not expired, most recently indexed last. */
  async runs(): Promise<RunStatus[]> {
    const now = Date.now();
    const ids = await this.#client.zrangebyscore(this.#k(this.#keys.runs()), now, '+inf');
    const out: RunStatus[] = [];
    for (const runId of ids) {
      const status = await this.run(runId).catch((error: unknown) => {
        if (error instanceof RunNotFoundError) return null;
        throw error;
      });
      if (status) out.push(status);
    }
    return out.sort((a, b) => a.startedAt - b.startedAt);
  }

  /**
   * One run's status.
   * @throws {@link RunNotFoundError} when the run is unknown here (or expired).
   */
  async run(runId: string): Promise<RunStatus> {
    const taskId = await this.#client.get(this.#k(this.#keys.runIndex(runId)));
    const snap = taskId === null ? null : await this.#state.runRead(taskId, runId);
    if (snap === null)
      throw new RunNotFoundError(
        `run ${JSON.stringify(runId)} not found (wrong --prefix, never submitted here, or expired)`,
      );
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
      const body = messageBody(raw[i]!.slice(1));
      if (body?.runId !== runId) continue;
      out.push({
        moduleId: String(body.moduleId),
        stepIdx: Number(body.stepIdx),
        prefixRequest: String(body.prefixRequest ?? ''),
        attempt: Number(body.epoch ?? 0),
        dueAt: Number(raw[i + 1]),
      });
    }
    return out;
  }

  /** The leases held on nodes of a run (its task's lease index, kept to the run's nodes). */
  async leases(taskId: string, runId: string): Promise<LeaseView[]> {
    const raw = await this.#client.zrange(this.#k(this.#keys.leases(taskId)), 0, -1, 'WITHSCORES');
    const runKeys = this.#k(this.#keys.runKeys(taskId, runId));
    const out: LeaseView[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const nodeId = raw[i]!;
      if ((await this.#client.zscore(runKeys, `ptm:${nodeId}`)) === null) continue;
      const [status, owner, version, epoch] = await this.#client.hmget(
        this.#k(this.#keys.ptmById(taskId, nodeId)),
        'status',
        'owner',
        'version',
        'epoch',
      );
      out.push({
        nodeId,
        status: status ?? 'missing',
        owner: owner ?? '',
        version: Number(version ?? 0),
        epoch: Number(epoch ?? 0),
        until: Number(raw[i + 1]),
      });
    }
    return out;
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
        const view: DeadLetterView = {
          queue,
          id,
          reason: f.reason ?? '',
          deliveries: Number(f.deliveries ?? 0),
          originalId: f.originalId ?? '',
        };
        const message = messageEnvelope(f.payload ?? '');
        if (message) {
          if (typeof message.kind === 'string') view.kind = message.kind;
          const body = message.body;
          if (typeof body?.taskId === 'string') view.taskId = body.taskId;
          if (typeof body?.runId === 'string') view.runId = body.runId;
          if (typeof body?.moduleId === 'string') view.moduleId = body.moduleId;
        }
        out.push(view);
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

/** The envelope of a queued message (`{ kind, body }`), or null when it is not one. */
function messageEnvelope(text: string): { kind?: unknown; body?: Record<string, unknown> } | null {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' ? (v as { body?: Record<string, unknown> }) : null;
  } catch {
    return null;
  }
}

/** The body of an encoded message, or null. */
function messageBody(text: string): Record<string, unknown> | null {
  return messageEnvelope(text)?.body ?? null;
}
