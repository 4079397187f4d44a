/**
 * Whether a commit can hand off by itself: the chain state on a `RedisBackend` and the parser
 * queue a Redis Stream queue on the same server and database, a standalone Redis (not a Cluster, where each
 * stream has a slot of its own), with the stream where `ChainKeyBuilder.queue('parser')` puts it
 * in the store's namespace. Then `ptm_commit_success` adds the successors to the parser stream,
 * the items to the items stream and acknowledges the node's delivery in its one script, and no
 * outbox round trip is needed; otherwise everything goes through the outbox and its relay.
 */
import type { Cluster, Redis } from 'ioredis';
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import { RedisBackend } from '../../store/redis-backend.js';
import type { ChainQueue } from '../queue.js';
import { RedisStreamQueue } from '../redis-stream-queue.js';
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
  /** The state, which acknowledges the items handed over. */
  readonly state: RedisChainState;
  /** The items stream, for the item relay: its client, full key, group and this consumer. */
  readonly items: {
    readonly client: Redis;
    readonly key: string;
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
  if (!(state instanceof RedisChainState) || !(parser instanceof RedisStreamQueue))
    return undefined;
  let backend: unknown;
  try {
    backend = state.runner;
  } catch {
    return undefined; // a wrapper (a Proxy) of a state: left to the outbox
  }
  if (!(backend instanceof RedisBackend)) return undefined;
  const place = parser.place;
  if (!sameServer(place.client, backend.client)) return undefined;
  const stream = keys.queue('parser');
  if (place.key !== backend.keyPrefix + stream) return undefined;
  const items = keys.items();
  return {
    commit: { stream, items, group: place.group, capacity: place.capacity },
    parser,
    state,
    items: {
      client: place.client as Redis,
      key: backend.keyPrefix + items,
      group: place.group,
      consumer: place.consumer,
      claimIdleMs: place.claimIdleMs,
    },
  };
}
