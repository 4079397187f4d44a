/**
 * mocra on a real Redis Cluster (3 masters on loopback): the CacheService and chain-state
 * conformance suites, transitions of tasks spread over every master, NOSCRIPT recovery per
 * node, scan over every master, and the slot rule.
 *
 * The whole CacheService suite runs: its cases that touch unrelated keys (`del` of several
 * keys, `mget` across slots, `scan`) are handled by the backend key by key / master by master.
 */
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ClaimCode,
  CommitCode,
  CommitErrorCode,
  FallbackCode,
  RecoverCode,
  RetryScheduleCode,
  TerminateCode,
  ThresholdCode,
  RedisChainState,
  type NodeAddress,
} from '../../../src/chain/state/index.js';
import { isMocraError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { createCacheService } from '../../../src/store/create.js';
import { keySlot } from '../../../src/store/key-slot.js';
import { LUA_SCRIPTS } from '../../../src/store/lua-scripts.generated.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { runCacheServiceConformance } from '../../conformance/cache-service.js';
import { runChainStateConformance } from '../../conformance/chain-state.js';
import {
  clusterBinaries,
  describeCluster,
  startRedisCluster,
  type RedisClusterHandle,
} from '../../helpers/redis-cluster.js';

const available = clusterBinaries() !== null;
let cluster: RedisClusterHandle | null = null;
let shared: Cluster | null = null;

/** Seed nodes of the running test cluster. */
function seeds(): { host: string; port: number }[] {
  if (!cluster) throw new Error('the test cluster is not running');
  return cluster.nodes.map((n) => ({ host: n.host, port: n.port }));
}

const uniquePrefix = () => `mocra-test-${randomBytes(6).toString('hex')}:`;

async function clear(backend: RedisBackend): Promise<void> {
  for await (const key of backend.scan('')) await backend.del(key);
  await backend.close();
}

beforeAll(async () => {
  if (!available) return;
  cluster = await startRedisCluster();
  shared = new Cluster(seeds(), {
    lazyConnect: true,
    enableOfflineQueue: false,
    retryDelayOnFailover: 0,
    redisOptions: { autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 0 },
  });
  await shared.connect();
}, 45_000);

afterAll(async () => {
  await shared?.quit().catch(() => shared?.disconnect());
  await cluster?.stop();
}, 30_000);

describeCluster('RedisBackend on a Redis Cluster', () => {
  // a backend that creates and owns its Cluster client from `{ cluster: seeds }`
  runCacheServiceConformance('RedisBackend on a 3-master cluster', async () => {
    const service = new RedisBackend({ redis: { cluster: seeds() }, keyPrefix: uniquePrefix() });
    await service.connect();
    return {
      service,
      elapse: (ms) => new Promise((r) => setTimeout(r, ms)),
      cleanup: () => clear(service),
    };
  });

  it('connect() resolves once every master answers: the first commands to each succeed', async () => {
    for (let round = 0; round < 3; round++) {
      const backend = new RedisBackend({ redis: { cluster: seeds() }, keyPrefix: uniquePrefix() });
      await backend.connect();
      const client = backend.client as Cluster;
      // one key per master, written at once right after connect()
      const byMaster = new Map<string, string>();
      for (let i = 0; byMaster.size < client.nodes('master').length && i < 10_000; i++) {
        const key = `k${i}`;
        const owner = client.slots[keySlot(backend.keyPrefix + key)]?.[0];
        if (owner !== undefined && !byMaster.has(owner)) byMaster.set(owner, key);
      }
      expect(byMaster.size).toBe(3);
      await Promise.all([...byMaster.values()].map((k) => backend.set(k, 'v')));
      expect(await Promise.all([...byMaster.values()].map((k) => backend.get(k)))).toEqual([
        'v',
        'v',
        'v',
      ]);
      await clear(backend);
      await backend.close();
    }
  });

  // a backend on a Cluster client the test owns
  runChainStateConformance('RedisChainState on a 3-master cluster', async () => {
    const clock = new ManualClock(1_000_000);
    const backend = new RedisBackend({ redis: shared!, keyPrefix: uniquePrefix() });
    await backend.connect();
    return {
      state: new RedisChainState(backend, { testClock: clock }),
      clock,
      raw: backend,
      cleanup: () => clear(backend),
    };
  });

  const keys = new ChainKeyBuilder();
  const taskIds = Array.from({ length: 12 }, (_, i) => `task-${i}`);
  const nodeOf = (prefix: string, taskId: string): string => {
    const slot = keySlot(prefix + keys.outbox(taskId));
    const owner = shared!.slots[slot]?.[0];
    if (!owner) throw new Error(`no owner known for slot ${slot}`);
    return owner;
  };

  it('runs every transition for tasks on every master without CROSSSLOT', async () => {
    const prefix = uniquePrefix();
    const backend = new RedisBackend({ redis: shared!, keyPrefix: prefix });
    await backend.connect();
    const state = new RedisChainState(backend);
    try {
      // the tasks really are spread: each master owns at least one of them
      expect(new Set(taskIds.map((t) => nodeOf(prefix, t))).size).toBe(3);
      await Promise.all(
        taskIds.map(async (taskId) => {
          const root: NodeAddress = {
            taskId,
            runId: 'run',
            account: 'acc',
            platform: 'web',
            moduleId: 'shop',
            stepIdx: 0,
            prefixRequest: '',
          };
          const a: NodeAddress = { ...root, stepIdx: 1, prefixRequest: 'GET /a' };
          const b: NodeAddress = { ...root, stepIdx: 1, prefixRequest: 'GET /b' };
          const c = await state.claim({
            node: root,
            owner: 'w1',
            leaseMs: 5_000,
            epoch: 0,
            root: true,
          });
          expect(c.code).toBe(ClaimCode.EXECUTE);
          expect(
            await state.commitSuccess({
              node: root,
              owner: 'w1',
              version: c.version,
              successors: [
                { node: a, message: `${taskId}:a` },
                { node: b, message: `${taskId}:b` },
              ],
              items: [`${taskId}:item`],
            }),
          ).toBe(CommitCode.COMMIT_OK);
          const taken = await state.takeOutbox(taskId, 10, 5_000);
          expect(taken).toEqual([`${taskId}:a`, `${taskId}:b`, `${taskId}:item`]);
          expect(await state.ackOutbox(taskId, taken)).toBe(3);
          const ca = await state.claim({
            node: a,
            owner: 'w2',
            leaseMs: 5_000,
            epoch: 0,
            root: false,
          });
          expect(ca.code).toBe(ClaimCode.EXECUTE);
          expect(
            await state.commitError({ node: a, owner: 'w2', version: ca.version, errorHash: 'e' }),
          ).toBe(CommitErrorCode.ERROR_EMIT_OK);
          expect(
            (
              await state.thresholdDecide({
                taskId,
                runId: 'r1',
                moduleId: 'shop',
                moduleThreshold: 5,
                taskThreshold: 9,
                retryAfterMs: 0,
              })
            ).code,
          ).toBe(ThresholdCode.CONTINUE);
          expect(
            await state.retrySchedule({
              node: a,
              attempt: 1,
              maxRetries: 3,
              delayMs: 0,
              message: `${taskId}:retry`,
              allowed: true,
            }),
          ).toBe(RetryScheduleCode.RETRY_SCHEDULED);
          expect(await state.promoteDueRetries(taskId, 10)).toEqual([`${taskId}:retry`]);
          expect(await state.takeOutbox(taskId, 10, 5_000)).toEqual([`${taskId}:retry`]);
          expect(await state.ackOutbox(taskId, [`${taskId}:retry`])).toBe(1);
          const cb = await state.claim({ node: b, owner: 'w3', leaseMs: 1, epoch: 0, root: false });
          expect(cb.code).toBe(ClaimCode.EXECUTE);
          await new Promise((r) => setTimeout(r, 5));
          expect(await state.recoverZombie(b)).toBe(RecoverCode.RECOVERED);
          expect(await state.tryAllowFallbackOnce(b)).toBe(FallbackCode.ALLOWED);
          expect(await state.terminateMark(taskId, 'r1', 'shop', 'done')).toBe(
            TerminateCode.TERMINATED,
          );
          expect(await state.terminateMark(taskId, 'r1', undefined, 'done')).toBe(
            TerminateCode.TERMINATED,
          );
        }),
      );
    } finally {
      await clear(backend);
    }
  });

  it('reloads scripts on every master after SCRIPT FLUSH (NOSCRIPT), transparently', async () => {
    const prefix = uniquePrefix();
    const backend = new RedisBackend({ redis: shared!, keyPrefix: prefix });
    await backend.connect();
    const state = new RedisChainState(backend);
    const sha = LUA_SCRIPTS.ptm_fallback_gate.sha1;
    const node = (taskId: string): NodeAddress => ({
      taskId,
      runId: 'run',
      account: 'acc',
      platform: 'web',
      moduleId: 'shop',
      stepIdx: 1,
      prefixRequest: 'x',
    });
    // one task per master
    const perMaster = new Map<string, string>();
    for (const t of taskIds)
      if (!perMaster.has(nodeOf(prefix, t))) perMaster.set(nodeOf(prefix, t), t);
    expect(perMaster.size).toBe(3);
    try {
      for (const t of perMaster.values()) {
        expect(await state.tryAllowFallbackOnce(node(t))).toBe(FallbackCode.ALLOWED);
      }
      const admins = cluster!.nodes.map((n) => cluster!.nodeClient(n.port));
      await Promise.all(admins.map((c) => c.script('FLUSH')));
      for (const c of admins) expect(await c.script('EXISTS', sha)).toEqual([0]);
      // the first call after the flush meets NOSCRIPT, reloads on every master, and succeeds
      const [first, ...rest] = [...perMaster.values()];
      expect(await state.tryAllowFallbackOnce(node(first!))).toBe(FallbackCode.REFUSED);
      for (const c of admins) expect(await c.script('EXISTS', sha)).toEqual([1]);
      for (const t of rest)
        expect(await state.tryAllowFallbackOnce(node(t))).toBe(FallbackCode.REFUSED);
      // flush again: each master recovers on its own next call
      await Promise.all(admins.map((c) => c.script('FLUSH')));
      for (const t of perMaster.values()) {
        expect(await state.tryAllowFallbackOnce({ ...node(t), prefixRequest: 'y' })).toBe(
          FallbackCode.ALLOWED,
        );
      }
    } finally {
      await clear(backend);
    }
  });

  it('refuses a cross-slot script call with a clear SCRIPT_FAILED, even with assertSameSlot: false', async () => {
    for (const assertSameSlot of [true, false]) {
      const backend = new RedisBackend({
        redis: shared!,
        keyPrefix: uniquePrefix(),
        assertSameSlot,
      });
      const error = await backend
        .runScript('store_compare_and_delete', ['{a}x', '{b}y'], ['v'])
        .catch((e: unknown) => e);
      expect(isMocraError(error, 'SCRIPT_FAILED')).toBe(true);
      expect((error as Error).message).toMatch(/different cluster slots/);
      expect((error as Error).message).not.toMatch(/CROSSSLOT/);
      await backend.close();
    }
  });

  it('scan visits every master; mget of one slot uses MGET, of many slots goes key by key', async () => {
    const backend = new RedisBackend({ redis: shared!, keyPrefix: uniquePrefix() });
    try {
      const names = Array.from({ length: 60 }, (_, i) => `k${i}`);
      for (const n of names) await backend.set(n, n);
      const owners = new Set(names.map((n) => shared!.slots[keySlot(backend.keyPrefix + n)]?.[0]));
      expect(owners.size).toBe(3);
      const found: string[] = [];
      for await (const k of backend.scan('k')) found.push(k);
      expect(found.sort()).toEqual([...names].sort());
      expect(await backend.mget(['k1', 'nope', 'k59'])).toEqual(['k1', null, 'k59']);
      await backend.set('{tag}a', '1');
      await backend.set('{tag}b', '2');
      expect(await backend.mget(['{tag}a', '{tag}b', '{tag}c'])).toEqual(['1', '2', null]);
      expect(await backend.del(...names, '{tag}a', '{tag}b')).toBe(names.length + 2);
    } finally {
      await clear(backend);
    }
  });

  it('createCacheService({ redis: { cluster } }) connects with the no-resend settings', async () => {
    const service = (await createCacheService({
      redis: { cluster: seeds(), clusterOptions: { retryDelayOnFailover: 500 } },
      keyPrefix: uniquePrefix(),
    })) as RedisBackend;
    try {
      expect(service.mode).toBe('distributed');
      expect(service.isCluster).toBe(true);
      const options = (service.client as Cluster).options;
      expect(options.retryDelayOnFailover).toBe(0);
      expect(options.enableOfflineQueue).toBe(false);
      expect(options.redisOptions?.autoResendUnfulfilledCommands).toBe(false);
      await service.set('x', '1');
      expect(await service.get('x')).toBe('1');
    } finally {
      await clear(service);
    }
    // a Cluster it was given stays open
    expect(await shared!.ping()).toBe('PONG');
  });

  it('a crashed master fails its calls at once with BACKEND_UNAVAILABLE (not queued, not resent); other masters answer', async () => {
    const own = await startRedisCluster();
    const backend = new RedisBackend({ redis: { cluster: own.nodes.map((n) => ({ ...n })) } });
    try {
      await backend.connect();
      const client = backend.client as Cluster;
      const ownerOf = (key: string) => client.slots[keySlot(key)]?.[0];
      const victim = own.nodes[0]!;
      const victimKey = `${victim.host}:${victim.port}`;
      const names = Array.from({ length: 40 }, (_, i) => `{n${i}}k`);
      const onVictim = names.find((k) => ownerOf(k) === victimKey)!;
      const elsewhere = names.find((k) => ownerOf(k) !== victimKey)!;
      expect(onVictim && elsewhere).toBeTruthy();
      await backend.set(onVictim, 'v');
      await backend.set(elsewhere, 'w');
      await own.kill(victim.port);
      expect(await backend.get(elsewhere)).toBe('w');
      const started = Date.now();
      const failures = [
        await backend.get(onVictim).catch((e: unknown) => e),
        await backend
          .runScript('store_compare_and_delete', [onVictim], ['v'])
          .catch((e: unknown) => e),
      ];
      for (const error of failures) {
        expect(isMocraError(error, 'BACKEND_UNAVAILABLE')).toBe(true);
        expect((error as { retryable: boolean }).retryable).toBe(true);
      }
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await backend.close();
      await own.stop();
    }
  });

  it('validates the cluster connection option', () => {
    expect(() => new RedisBackend({ redis: { cluster: [] } })).toThrow(/`redis.cluster`/);
    expect(() => new RedisBackend({ redis: { cluster: seeds(), other: 1 } as never })).toThrow(
      /unknown option `redis.other`/,
    );
  });
});
