/**
 * Where bench/distributed runs: one private redis-server, or a private 3-master Redis Cluster on
 * loopback (test/helpers/start-redis-cluster.ts, the tests' cluster). A target hands out what
 * every part of the bench needs: an admin client per server (INFO is read from each master
 * directly), the env that points a worker process at it, clients for this process, the task ids
 * of each round, and which server holds a key.
 */
import { Cluster, Redis } from 'ioredis';
import { ChainKeyBuilder, type RedisBackend } from '../../src/index.js';
import { keySlot } from '../../src/store/key-slot.js';
import { startRedisServer } from '../../test/helpers/redis-server.js';
import { startRedisCluster } from '../../test/helpers/start-redis-cluster.js';

export type TargetKind = 'standalone' | 'cluster';

/** One Redis server of a target (a master, on a cluster). */
export interface TargetServer {
  /** `host:port`. */
  name: string;
  /** A plain client on this server only (INFO, SCAN, UNLINK of its own keys). */
  admin: Redis;
}

export interface Target {
  kind: TargetKind;
  /** How the results name it: 'one Redis' or 'a 3-master cluster'. */
  where: string;
  servers: TargetServer[];
  /** Env of a worker process: REDIS_URL, or CLUSTER_NODES. */
  workerEnv: Record<string, string>;
  /** A new client of this process on the target (a `Cluster` on a cluster). */
  client(options?: { maxRetriesPerRequest?: number | null }): Redis | Cluster;
  /** What `RedisBackend` takes to reach it. */
  storeConnection: string | { cluster: { host: string; port: number }[] };
  /**
   * The BullMQ prefix: on a cluster it is a hash tag (`{…}`), so every key of the queue is in one
   * slot, as BullMQ's scripts need; the whole queue then lives on one master.
   */
  bullPrefix(base: string): string;
  /** The tasks submitted in round `round`. */
  taskIds(round: number): string[];
  /** The server (`host:port`) that holds `key`. */
  serverOf(key: string): string;
  stop(): Promise<void>;
}

/**
 * Connects the store's client to every master now. `RedisBackend.connect()` on a cluster answers
 * once one node does; the other masters' connections are still to be made, and since its cluster
 * client queues nothing offline, the first commands sent to them fail ("Connection is closed").
 */
export async function connectEveryMaster(store: RedisBackend): Promise<void> {
  if (!store.isCluster) return;
  await Promise.all((store.client as Cluster).nodes('master').map((node) => node.ping()));
}

/** One private redis-server; one task per round. */
export async function startStandalone(): Promise<Target> {
  const server = await startRedisServer();
  const admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
  const name = `127.0.0.1:${server.port}`;
  return {
    kind: 'standalone',
    where: 'one Redis',
    servers: [{ name, admin }],
    workerEnv: { REDIS_URL: server.url },
    client: (options = {}) => new Redis(server.url, { maxRetriesPerRequest: 2, ...options }),
    storeConnection: server.url,
    bullPrefix: (base) => base,
    taskIds: (round) => [`round-${round}`],
    serverOf: () => name,
    stop: async () => {
      admin.disconnect();
      await server.stop();
    },
  };
}

/**
 * A private 3-master cluster; `tasksPerRound` tasks per round, their ids chosen so that their
 * hash tags (`{t:<taskId>}`) fall on the masters in turn (task k of a round on master k mod 3):
 * the tasks' state is spread evenly, as it would be on average over many tasks.
 */
export async function startCluster(tasksPerRound: number): Promise<Target> {
  const cluster = await startRedisCluster();
  const seeds = cluster.nodes.map((n) => ({ host: n.host, port: n.port }));
  const servers = cluster.nodes.map((n) => ({
    name: `${n.host}:${n.port}`,
    admin: cluster.nodeClient(n.port),
  }));
  // the slot map, read once (the cluster does not reshard during the bench)
  const router = new Cluster(seeds, { redisOptions: { maxRetriesPerRequest: 1 } });
  await new Promise<void>((resolve, reject) => {
    router.once('ready', resolve);
    router.once('error', reject);
  });
  const serverOf = (key: string): string => router.slots[keySlot(key)]![0]!;
  const keys = new ChainKeyBuilder();
  return {
    kind: 'cluster',
    where: `a ${servers.length}-master cluster`,
    servers,
    workerEnv: { CLUSTER_NODES: seeds.map((s) => `${s.host}:${s.port}`).join(',') },
    client: (options = {}) =>
      new Cluster(seeds, { redisOptions: { maxRetriesPerRequest: 2, ...options } }),
    storeConnection: { cluster: seeds },
    bullPrefix: (base) => `{${base}}`,
    taskIds: (round) => {
      const ids: string[] = [];
      for (let n = 0; ids.length < tasksPerRound; n++) {
        if (n > 100_000) throw new Error('no task id found for every master');
        const id = `round-${round}-${n}`;
        const wanted = servers[ids.length % servers.length]!.name;
        if (serverOf(keys.taskRecord(id)) === wanted) ids.push(id);
      }
      return ids;
    },
    serverOf,
    stop: async () => {
      router.disconnect();
      await cluster.stop();
    },
  };
}
