/**
 * bench/distributed's cluster target and its per-master accounting, on a real 3-master cluster:
 * the tasks of a round fall one on each master, BullMQ's hash-tagged prefix puts a whole queue on
 * one master, and INFO read from each master directly counts a script and the commands it runs on
 * the master that holds its key only.
 */
import { Queue } from 'bullmq';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ChainKeyBuilder } from '../../../src/index.js';
import { startCluster, type Target } from '../../../bench/distributed/targets.js';
import { usageBetween, usageOfAll } from '../../../bench/distributed/redis-usage.js';
import { clusterBinaries, describeCluster } from '../../helpers/redis-cluster.js';

let target: Target | null = null;

beforeAll(async () => {
  if (clusterBinaries() !== null) target = await startCluster(6);
}, 45_000);

afterAll(async () => {
  await target?.stop();
}, 30_000);

describeCluster('bench/distributed on a cluster', () => {
  it("spreads a round's tasks over the masters in turn", () => {
    const t = target!;
    const keys = new ChainKeyBuilder();
    for (const round of [0, 1, 7]) {
      const ids = t.taskIds(round);
      expect(ids).toHaveLength(6);
      expect(new Set(ids).size).toBe(6);
      const owners = ids.map((id) => t.serverOf(keys.taskRecord(id)));
      const masters = t.servers.map((s) => s.name);
      expect(owners).toEqual([...masters, ...masters]);
      // every key of a task is on its owner (one hash tag)
      for (const [i, id] of ids.entries()) {
        expect(t.serverOf(keys.outbox(id))).toBe(owners[i]);
      }
    }
  });

  it("puts every key of BullMQ's queue on one master through the hash-tagged prefix", async () => {
    const t = target!;
    const prefix = t.bullPrefix('bench-test-bull');
    expect(prefix).toBe('{bench-test-bull}');
    const connection = t.client({ maxRetriesPerRequest: null });
    const queue = new Queue('noop', { connection, prefix });
    try {
      await queue.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: 'noop', data: { i } })));
      const holders = await Promise.all(
        t.servers.map(async (s) => {
          const [, found] = await s.admin.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 10_000);
          return found.length;
        }),
      );
      expect(holders.filter((n) => n > 0)).toHaveLength(1);
      expect(t.servers[holders.findIndex((n) => n > 0)]!.name).toBe(
        t.serverOf(`${prefix}:noop:wait`),
      );
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    }
  });

  it('counts a script and its inner commands on the master of its key only', async () => {
    const t = target!;
    const key = 'bench-test:{usage}:counter';
    const owner = t.servers.findIndex((s) => s.name === t.serverOf(key));
    const admin = t.servers[owner]!.admin;
    const before = await usageOfAll(t.servers.map((s) => s.admin));
    for (let i = 0; i < 10; i++) {
      await admin.eval("redis.call('INCR', KEYS[1]); return redis.call('GET', KEYS[1])", 1, key);
    }
    const after = await usageOfAll(t.servers.map((s) => s.admin));
    const used = after.map((a, s) => usageBetween(before[s]!, a));
    // the owner: 10 EVAL, 10 INCR, 10 GET; the INFO calls that read the figures left out
    expect(used[owner]!.byCommand).toEqual({ eval: 10, incr: 10, get: 10 });
    expect(used[owner]!.commands).toBe(30);
    // one read event per EVAL; the cluster client may add one of its own (a slots refresh)
    expect(used[owner]!.reads).toBeGreaterThanOrEqual(10);
    expect(used[owner]!.reads).toBeLessThanOrEqual(12);
    for (const [s, u] of used.entries()) {
      if (s === owner) continue;
      expect(u.commands, t.servers[s]!.name).toBe(0);
      expect(u.byCommand).toEqual({});
    }
    await admin.del(key);
  });
});
