/**
 * Whether a commit can hand off by itself: the chain state on a `RedisBackend` and the parser
 * queue a Redis Stream queue, with the stream where `ChainKeyBuilder.queue('parser')` puts it in
 * the store's namespace, and either both on one standalone server and database (shared streams)
 * or both on a Cluster with the parser queue sharded by task (each task's streams in its slot,
 * `ChainKeyBuilder.taskQueue`). Then `ptm_commit_success` adds the successors to the parser
 * stream, the items to the items stream and acknowledges the node's delivery in its one script,
 * and no outbox round trip is needed; otherwise everything goes through the outbox and its relay.
 */
import type { Cluster, Redis } from 'ioredis';
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import { RedisBackend } from '../../store/redis-backend.js';
import type { ChainQueue, Delivery } from '../queue.js';
import { RedisStreamQueue } from '../redis-stream-queue.js';
import { ShardedStreamQueue } from '../sharded-stream-queue.js';
import type { TaskStreams } from '../task-streams.js';
import { RedisChainState } from '../state/redis-chain-state.js';
import type { ChainStateStore } from '../state/index.js';
import type { CommitHandOff } from '../state/commit-hand-off.js';
import { isCluster } from '../stream-commands.js';

/** A deployment whose commits hand off by themselves. @internal */
export interface StreamHandOff {
  /** What each commit is given (its delivery added per node). */
  readonly commit: Omit<CommitHandOff, 'delivery'>;
  /** The queue whose deliveries the commits acknowledge. */
  readonly parser: ChainQueue<string>;
  /** Whether a commit of `taskId` may acknowledge `delivery` (it came from the stream it names). */
  accepts(delivery: Delivery<string>, taskId: string): boolean;
  /** A commit of `taskId` handed `successors` and `items` off. */
  handedOff(taskId: string, successors: number, items: number): void;
  /** The state, which acknowledges the items handed over. */
  readonly state: RedisChainState;
  /**
   * The items stream, for the item relay: its client, full key, group and this consumer; with
   * per-task streams, `streams` (the key is then the shared stream's, read by no one).
   */
  readonly items: {
    readonly client: Redis | Cluster;
    readonly key: string;
    readonly streams?: TaskStreams;
    /** A stream's key in the store's namespace (without its prefix), as transitions name it. */
    readonly storeKey: (key: string) => string;
    readonly group: string;
    readonly consumer: string;
    readonly claimIdleMs: number;
  };
}

/**
 * Whether two clients talk to one standalone server and database: the same client, or two
 * `Redis` clients with the same host, port (or socket path) and database. Never a Cluster.
 */
function sameServer(a: Redis | Cluster, b: Redis | Cluster): boolean {
  if (isCluster(a) || isCluster(b)) return false;
  if (a === b) return true;
  const x = a.options;
  const y = b.options;
  return (
    x.host === y.host &&
    x.port === y.port &&
    (x.path ?? '') === (y.path ?? '') &&
    (x.db ?? 0) === (y.db ?? 0)
  );
}

/** The hand-off of this deployment, or undefined when its commits go through the outbox. @internal */
export function streamHandOff(
  state: ChainStateStore,
  parser: ChainQueue<string>,
  keys: ChainKeyBuilder,
): StreamHandOff | undefined {
  const sharded = parser instanceof ShardedStreamQueue;
  if (!(state instanceof RedisChainState) || !(sharded || parser instanceof RedisStreamQueue))
    return undefined;
  let backend: unknown;
  try {
    backend = state.runner;
  } catch {
    return undefined; // a wrapper (a Proxy) of a state: left to the outbox
  }
  if (!(backend instanceof RedisBackend)) return undefined;
  const place = parser.place;
  const stream = keys.queue('parser');
  if (place.key !== backend.keyPrefix + stream) return undefined;
  const items = keys.items();
  if (sharded) {
    // per-task streams: both on one Cluster (a task's streams in its slot), where the queue's
    // streams are where the key builder puts them in the store's namespace
    const streams = parser.place.streams;
    if (!isCluster(place.client) || !isCluster(backend.client)) return undefined;
    if (streams.key('t', 'parser') !== backend.keyPrefix + keys.taskQueue('t', 'parser'))
      return undefined;
    return {
      commit: { stream, items, group: place.group, capacity: place.capacity, perTask: true },
      parser,
      accepts: (delivery, taskId) => parser.fromTaskStream(delivery, taskId),
      handedOff: (taskId, successors) => {
        if (successors > 0) parser.wake(taskId);
        else streams.active(taskId);
      },
      state,
      items: {
        client: place.client,
        key: backend.keyPrefix + items,
        streams,
        storeKey: (key) => key.slice(backend.keyPrefix.length),
        group: place.group,
        consumer: place.consumer,
        claimIdleMs: place.claimIdleMs,
      },
    };
  }
  if (!sameServer(place.client, backend.client)) return undefined;
  return {
    commit: { stream, items, group: place.group, capacity: place.capacity },
    parser,
    accepts: () => true,
    handedOff: () => {},
    state,
    items: {
      client: place.client,
      key: backend.keyPrefix + items,
      storeKey: (key) => key.slice(backend.keyPrefix.length),
      group: place.group,
      consumer: place.consumer,
      claimIdleMs: place.claimIdleMs,
    },
  };
}
