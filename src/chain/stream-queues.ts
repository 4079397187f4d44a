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
}

/** The queues made by {@link createRedisStreamQueues}: a `ChainQueues` of Redis Stream queues. */
export interface RedisStreamQueues {
  /** TaskModel messages: stream `keys.queue('task')`. */
  task: RedisStreamQueue<string>;
  /** ParserTaskModel messages: stream `keys.queue('parser')`. */
  parser: RedisStreamQueue<string>;
  /** ErrorTaskModel messages: stream `keys.queue('error')`. */
  error: RedisStreamQueue<string>;
}

const W = 'createRedisStreamQueues';
const OPTION_KEYS = ['client', 'keys', 'keyPrefix', 'group', 'consumer', ...TUNING_KEYS] as const;

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
 * On a Redis Cluster, pass an ioredis `Cluster` as `client`. Each stream is a single key, so it
 * lives in one slot on one master (the three queues and their dead-letter streams hash
 * independently, so they usually spread over the masters); every command and MULTI of a queue
 * names only its own stream, so none is cross-slot. A queue's throughput is therefore bounded
 * by the master that holds its stream, whatever the size of the cluster; the chain state
 * (per-task hash tags) is what spreads. Do not put a hash tag (`{…}`) in the `keyPrefix` you
 * share with the `RedisBackend`: it would pin every key of the deployment, state included, to
 * one slot.
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
  return { task: make('task'), parser: make('parser'), error: make('error') };
}

function identity(text: string): string {
  return text;
}
