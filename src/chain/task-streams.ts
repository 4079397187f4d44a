/**
 * The per-task streams of a deployment on a Redis Cluster (see `createRedisStreamQueues`'s
 * `shardByTask`): each task's parser and items streams are in its hash tag, so they live in its
 * slot, on its master. `TaskStreams` knows which tasks' streams to read — those active lately
 * here, and those the index `queueTasks` (task id → last activity ms) lists as active lately —,
 * creates their consumer groups, keeps their keys alive while they are in use, and groups
 * commands by master (a pipeline on a `Cluster` must stay on one master).
 * @internal
 */
import type { Cluster, Redis } from 'ioredis';
import { keySlot } from '../store/key-slot.js';
import { createGroup, isCluster } from './stream-commands.js';

/** The two streams of a task. */
export type TaskStreamName = 'parser' | 'items';

/** Options of {@link TaskStreams}. @internal */
export interface TaskStreamsOptions {
  client: Redis | Cluster;
  /** The index of the tasks whose streams may hold entries (full key). */
  indexKey: string;
  /** The full key of a task's stream. */
  streamKey(taskId: string, name: TaskStreamName): string;
  /** The consumer group of every stream. */
  group: string;
  /**
   * A task whose streams were active within this window (here, or by the index) is read on
   * every poll. A task with entries that nobody read for longer is found again by the scan of
   * the index's older members (every half window).
   */
  hotMs: number;
  /** How often the index is read again, in ms. */
  refreshMs: number;
  /**
   * A task's index entry and streams are kept this long (ms) after their last use, then
   * trimmed from the index and expired by Redis.
   */
  retentionMs: number;
}

/** Most tasks read from the index at once. */
const MAX_TASKS = 10_000;
/** Older index members checked per scan. */
const SCAN = 1_000;

/** Which tasks' streams to read, and their groups. @internal */
export class TaskStreams {
  readonly #o: TaskStreamsOptions;
  /** Tasks active here, or in the index, lately: task id → when (Date.now()). */
  readonly #hot = new Map<string, number>();
  /** When each task was last recorded in the index by this process (Date.now()). */
  readonly #touched = new Map<string, number>();
  /** The consumer groups of a task's streams, created once per process. */
  readonly #groups = new Map<string, Promise<void>>();
  #refreshedAt = -Infinity;
  #scannedAt = -Infinity;
  #refreshing: Promise<void> | null = null;

  constructor(options: TaskStreamsOptions) {
    this.#o = options;
  }

  /** The full key of a task's stream. */
  key(taskId: string, name: TaskStreamName): string {
    return this.#o.streamKey(taskId, name);
  }

  /** A task's streams have work now (pushed or handed off here): read them from now on. */
  active(taskId: string): void {
    this.#hot.set(taskId, Date.now());
  }

  /**
   * Records in the index that a task's streams have work (and keeps the streams' keys for
   * `retentionMs` more): at most every quarter `hotMs` per task and process.
   */
  async touch(taskId: string): Promise<void> {
    const now = Date.now();
    this.#hot.set(taskId, now);
    const last = this.#touched.get(taskId);
    if (last !== undefined && now - last < this.#o.hotMs / 4) return;
    this.#touched.set(taskId, now);
    if (this.#touched.size > MAX_TASKS) this.#touched.clear();
    const { client, indexKey, retentionMs } = this.#o;
    try {
      await Promise.all([
        client.zadd(indexKey, now, taskId),
        ...(['parser', 'items'] as const).map((n) =>
          client.pexpire(this.key(taskId, n), retentionMs),
        ),
      ]);
    } catch (error) {
      this.#touched.delete(taskId);
      throw error;
    }
  }

  /**
   * Creates the consumer groups of a task's streams if missing (the streams too, each with the
   * retention as its TTL), once per process; again after {@link TaskStreams.lost}.
   */
  groups(taskId: string): Promise<void> {
    let made = this.#groups.get(taskId);
    if (made === undefined) {
      const { client, group, retentionMs } = this.#o;
      made = Promise.all(
        (['parser', 'items'] as const).map(async (n) => {
          const key = this.key(taskId, n);
          await createGroup({ client, key, group });
          await client.pexpire(key, retentionMs);
        }),
      ).then(() => undefined);
      made.catch(() => this.#groups.delete(taskId));
      if (this.#groups.size > MAX_TASKS) this.#groups.clear();
      this.#groups.set(taskId, made);
    }
    return made;
  }

  /** A task's streams lost their group (NOGROUP: expired and added to again): create it again. */
  lost(taskId: string): void {
    this.#groups.delete(taskId);
  }

  /**
   * The tasks whose streams to read now, their groups created: those active within `hotMs`
   * here or by the index (read again every `refreshMs`; every half `hotMs`, the older members
   * whose streams still hold entries are made active again and the long idle ones trimmed).
   */
  async tasks(): Promise<string[]> {
    const now = Date.now();
    if (now - this.#refreshedAt >= this.#o.refreshMs) {
      this.#refreshing ??= this.#refresh(now).finally(() => (this.#refreshing = null));
      await this.#refreshing;
    }
    const out: string[] = [];
    for (const [taskId, at] of this.#hot) {
      if (now - at > this.#o.hotMs) this.#hot.delete(taskId);
      else out.push(taskId);
    }
    await Promise.all(out.map((t) => this.groups(t)));
    return out;
  }

  /** Every task of the index (up to 10,000), and those active here. */
  async all(): Promise<string[]> {
    const ids = await this.#o.client.zrange(this.#o.indexKey, 0, MAX_TASKS - 1);
    return [...new Set([...ids, ...this.#hot.keys()])];
  }

  async #refresh(now: number): Promise<void> {
    const { client, indexKey, hotMs, retentionMs } = this.#o;
    const rows = await client.zrangebyscore(
      indexKey,
      now - hotMs,
      '+inf',
      'WITHSCORES',
      'LIMIT',
      0,
      MAX_TASKS,
    );
    for (let i = 0; i + 1 < rows.length; i += 2) {
      const at = Number(rows[i + 1]);
      if ((this.#hot.get(rows[i]!) ?? -Infinity) < at) this.#hot.set(rows[i]!, at);
    }
    this.#refreshedAt = now;
    if (now - this.#scannedAt < hotMs / 2) return;
    this.#scannedAt = now;
    // older members: a task whose streams still hold entries (its workers died, or were busy
    // elsewhere) is active again; the index forgets those idle past the retention (their
    // streams have expired by then)
    await client.zremrangebyscore(indexKey, '-inf', `(${now - retentionMs}`);
    const old = await client.zrangebyscore(indexKey, '-inf', `(${now - hotMs}`, 'LIMIT', 0, SCAN);
    const lengths = await this.lengths(
      old.flatMap((t) => [this.key(t, 'parser'), this.key(t, 'items')]),
    );
    for (const [i, taskId] of old.entries()) {
      if (lengths[2 * i]! + lengths[2 * i + 1]! > 0) await this.touch(taskId);
    }
  }

  /** XLEN of each key, pipelined per master. */
  async lengths(keys: readonly string[]): Promise<number[]> {
    const out = new Array<number>(keys.length).fill(0);
    await Promise.all(
      byMaster(
        this.#o.client,
        keys.map((key, i) => ({ key, i })),
      ).map(async (group) => {
        const pipeline = this.#o.client.pipeline();
        for (const { key } of group) pipeline.xlen(key);
        const replies = (await pipeline.exec()) ?? [];
        for (const [j, { i }] of group.entries()) {
          const [error, n] = replies[j] ?? [null, 0];
          if (error) throw error;
          out[i] = Number(n);
        }
      }),
    );
    return out;
  }
}

/**
 * Splits `items` by the master that holds each one's `key` (one group on a standalone Redis),
 * in order: the commands of one group can go in one pipeline.
 */
export function byMaster<T extends { key: string }>(
  client: Redis | Cluster,
  items: readonly T[],
): T[][] {
  if (!isCluster(client)) return items.length === 0 ? [] : [[...items]];
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const owner = client.slots[keySlot(item.key)]?.[0] ?? '';
    let group = groups.get(owner);
    if (group === undefined) groups.set(owner, (group = []));
    group.push(item);
  }
  return [...groups.values()];
}

/**
 * The task of an encoded message (`body.taskId` of a parser or error message, `task.taskId` of a
 * task message); undefined when it has none (its consumer dead-letters it).
 */
export function taskOf(message: string): string | undefined {
  try {
    const m = JSON.parse(message) as { body?: { taskId?: unknown }; task?: { taskId?: unknown } };
    const id = m?.body?.taskId ?? m?.task?.taskId;
    return typeof id === 'string' && id.length > 0 ? id : undefined;
  } catch {
    return undefined;
  }
}
