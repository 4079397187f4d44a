/**
 * `createRedisStreamQueues`: the three work queues of one distributed deployment of the chain
 * engine, on Redis Streams, with the key layout, consumer group and consumer naming done once.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Cluster, Redis } from 'ioredis';
import { invalid, optionalString, readOptions, requireString } from '../internal/validate.js';
import { ChainKeyBuilder } from '../keys/chain-key-builder.js';
import { namespacePrefix } from '../keys/namespace.js';
import { RedisStreamQueue } from './redis-stream-queue.js';
import { ShardedStreamQueue } from './sharded-stream-queue.js';
import { isCluster } from './stream-commands.js';
import { TaskStreams } from './task-streams.js';
import {
  TUNING_KEYS,
  readStreamQueueTuning,
  type StreamQueueTuning,
} from './stream-queue-tuning.js';

/** Options of {@link createRedisStreamQueues}; the tuning options are those of {@link StreamQueueTuning}. */
export interface RedisStreamQueuesOptions extends StreamQueueTuning {
  /**
   * An ioredis client: a `Redis` (a single server or a replicated primary) or a `Cluster`. Each
   * queue duplicates it once for its blocking reads (a `Cluster` duplicates into a `Cluster`);
   * the client itself is never closed by the queues.
   */
  client: Redis | Cluster;
  /** Key layout: the streams are `keys.queue(name)`, the dead letters `keys.queueDeadLetters(name)`. @defaultValue new ChainKeyBuilder() */
  keys?: ChainKeyBuilder;
  /**
   * The namespace of the stream keys, like `RedisBackend`'s `keyPrefix` (pass the same value so
   * the queues sit next to the chain state; see `namespacePrefix`). @defaultValue ''
   */
  keyPrefix?: string;
  /** The consumer group, shared by every worker of the deployment. @defaultValue 'mocra-chain' */
  group?: string;
  /**
   * This process's consumer name; it must be unique among the live workers (two processes with
   * one name would share their pending deliveries). @defaultValue `<host>:<pid>:<8 random hex>`
   */
  consumer?: string;
  /**
   * Parser messages (and the items of commits that hand off) on per-task streams, each in its
   * task's hash tag (`keys.taskQueue(taskId, 'parser' | 'items')`), instead of one shared
   * stream: on a Redis Cluster each task's stream then lives on the task's master, beside its
   * state, so commits hand off in their own script and the queue's work spreads over the
   * masters. Workers find the tasks to read in the index `keys.queueTasks()`. Every worker of a
   * deployment must use the same value. @defaultValue true with a `Cluster` client, false with a
   * `Redis` client (one server gains nothing from it and would poll more streams)
   */
  shardByTask?: boolean;
}

/** The queues made by {@link createRedisStreamQueues}: a `ChainQueues` of Redis Stream queues. */
export interface RedisStreamQueues {
  /** TaskModel messages: stream `keys.queue('task')`. */
  task: RedisStreamQueue<string>;
  /**
   * ParserTaskModel messages: stream `keys.queue('parser')`; with `shardByTask`, each task's
   * stream `keys.taskQueue(taskId, 'parser')` (and `keys.queue('parser')` for a message without
   * a task, or left by an earlier version).
   */
  parser: RedisStreamQueue<string> | ShardedStreamQueue;
  /** ErrorTaskModel messages: stream `keys.queue('error')`. */
  error: RedisStreamQueue<string>;
}

const W = 'createRedisStreamQueues';
const OPTION_KEYS = [
  'client',
  'keys',
  'keyPrefix',
  'group',
  'consumer',
  'shardByTask',
  ...TUNING_KEYS,
] as const;
/** How long a task's streams and index entry are kept after their last use (the state's default TTL). */
const TASK_STREAM_RETENTION_MS = 7 * 86_400_000;

/**
 * Creates the `task`, `parser` and `error` queues of one distributed deployment on Redis
 * Streams, to pass as the chain engine's `queues` (with a `RedisBackend` as its `store`).
 *
 * Every worker process of the deployment calls it with the same `keys`/`keyPrefix` and `group`
 * and its own `consumer`; the streams are then shared and each message is handed to one worker
 * at a time (at-least-once: a worker that dies leaves its deliveries to be taken over after
 * `claimIdleMs`). The stream keys carry no task hash tag: all tasks share them. Messages are
 * stored as the engine encodes them (identity encode/decode); the engine validates them and
 * dead-letters a malformed one into the queue's dead-letter stream.
 *
 * On a Redis Cluster, pass an ioredis `Cluster` as `client`. The parser queue is then sharded
 * by task (`shardByTask`): each task's parser stream (and items stream) is in the task's hash
 * tag, on the task's master beside its state, so a commit hands its successors and items off in
 * its own script, and the work of the tasks spreads over the masters. A worker reads the streams
 * of the tasks active lately (the index `keys.queueTasks()`, read every second, and the tasks it
 * pushes to or commits in at once), without blocking (one XREADGROUP cannot name streams of two
 * slots): one pipeline per master per read; when a read finds nothing the next waits 5 ms,
 * doubling up to `blockMs`. The task and error queues stay single streams (one slot each; every
 * command and MULTI of a queue names only its own stream, so none is cross-slot). Do not put a
 * hash tag (`{…}`) in the `keyPrefix` you share with the `RedisBackend`: it would pin every key
 * of the deployment, state included, to one slot.
 *
 * The queues belong to the caller: after `engine.stop()`, call `shutdown()` on each.
 *
 * @throws {@link ConfigError} naming the first invalid option.
 * @example
 * ```ts
 * const client = new Redis(process.env.REDIS_URL!);
 * const store = new RedisBackend({ redis: client, keyPrefix: 'shop:' });
 * const queues = createRedisStreamQueues({ client, keyPrefix: 'shop:', consumer: 'worker-1' });
 * const engine = createChainEngine({ modules: [shop], store, queues });
 * await engine.start();
 * // … on SIGTERM:
 * await engine.stop();
 * await Promise.all([queues.task.shutdown(), queues.parser.shutdown(), queues.error.shutdown()]);
 * ```
 */
export function createRedisStreamQueues(options: RedisStreamQueuesOptions): RedisStreamQueues {
  if (options === undefined) invalid(W, 'options', 'an object with `client`', options);
  const o = readOptions(W, options, OPTION_KEYS);
  if (!o.client || typeof (o.client as Redis).xreadgroup !== 'function')
    invalid(W, 'client', 'an ioredis Redis or Cluster client', o.client);
  if (typeof (o.client as { duplicate?: unknown }).duplicate !== 'function')
    invalid(W, 'client', 'an ioredis Redis or Cluster client', o.client);
  const keys = o.keys ?? new ChainKeyBuilder();
  if (!(keys instanceof ChainKeyBuilder)) invalid(W, 'keys', 'a ChainKeyBuilder', o.keys);
  const keyPrefix = namespacePrefix(
    optionalString(W, 'keyPrefix', o.keyPrefix, '', { allowEmpty: true }),
    W,
  );
  const group = optionalString(W, 'group', o.group, 'mocra-chain');
  const consumer =
    optionalString(W, 'consumer', o.consumer, undefined) ??
    `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  requireString(W, 'consumer', consumer);
  const tuning = readStreamQueueTuning(W, o);

  const make = (name: 'task' | 'parser' | 'error'): RedisStreamQueue<string> =>
    new RedisStreamQueue<string>({
      client: o.client!,
      name,
      key: keyPrefix + keys.queue(name),
      deadLetterKey: keyPrefix + keys.queueDeadLetters(name),
      group,
      consumer,
      encode: identity,
      decode: identity,
      ...tuning,
    });
  const shard = o.shardByTask ?? isCluster(o.client!);
  if (typeof shard !== 'boolean') invalid(W, 'shardByTask', 'a boolean', o.shardByTask);
  if (!shard) return { task: make('task'), parser: make('parser'), error: make('error') };
  const streams = new TaskStreams({
    client: o.client!,
    indexKey: keyPrefix + keys.queueTasks(),
    streamKey: (taskId, name) => keyPrefix + keys.taskQueue(taskId, name),
    group,
    hotMs: Math.max(60_000, 2 * tuning.claimIdleMs),
    refreshMs: Math.min(1_000, tuning.blockMs),
    retentionMs: TASK_STREAM_RETENTION_MS,
  });
  const parser = new ShardedStreamQueue({
    client: o.client!,
    name: 'parser',
    key: keyPrefix + keys.queue('parser'),
    deadLetterKey: keyPrefix + keys.queueDeadLetters('parser'),
    group,
    consumer,
    streams,
    ...tuning,
  });
  return { task: make('task'), parser, error: make('error') };
}

function identity(text: string): string {
  return text;
}
