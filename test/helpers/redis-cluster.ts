/**
 * The Redis Cluster of the tests: `startRedisCluster` (test/helpers/start-redis-cluster.ts, which
 * bench/distributed shares) and `describeCluster`, which runs its tests only when redis-server and
 * redis-cli are installed. Without them, `describeCluster` skips loudly, except under CI=true
 * where it fails.
 */
import { describe } from 'vitest';
import { clusterBinaries } from './start-redis-cluster.js';

export {
  clusterBinaries,
  startRedisCluster,
  type ClusterNodeAddress,
  type RedisClusterHandle,
} from './start-redis-cluster.js';

function isCi(): boolean {
  return process.env.CI === 'true' || process.env.CI === '1';
}

/**
 * `describe` that runs only when redis-server and redis-cli are installed. Without them it
 * warns loudly and skips; under CI=true it fails instead.
 */
export function describeCluster(name: string, fn: () => void): void {
  if (clusterBinaries() === null) {
    const message =
      'redis-server or redis-cli is not installed: the Redis Cluster tests cannot run.';
    if (isCi()) {
      throw new Error(
        `${message} Under CI this is a failure (install the Debian package redis-server).`,
      );
    }
    const bar = '!'.repeat(100);
    console.warn(
      `\n${bar}\n!! ${message}\n!! They are SKIPPED. Install redis-server (with redis-tools).\n${bar}\n`,
    );
  }
  describe.skipIf(clusterBinaries() === null)(`${name} [redis cluster]`, fn);
}
