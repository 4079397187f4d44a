/**
 * RedisChainState on a Redis that is out of memory (`maxmemory` reached, `noeviction`): a
 * transition that must write is refused with a retryable MocraError and writes NOTHING — the
 * scripts check everything before their first write, and Redis refuses a script's first write
 * when it is out of memory. Runs on a private redis-server (always under CI).
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  ClaimCode,
  CommitCode,
  CommitErrorCode,
  RedisChainState,
  RetryScheduleCode,
  type NodeAddress,
} from '../../../src/chain/state/index.js';
import { ErrorCode, isMocraError } from '../../../src/errors.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { redisServerBinary, startRedisServer } from '../../helpers/redis-server.js';

const CI = process.env.CI === 'true' || process.env.CI === '1';
const PREFIX = 'oom-test:';

const node = (moduleId: string, stepIdx = 0, prefixRequest = ''): NodeAddress => ({
  taskId: 'task-oom',
  runId: 'run',
  account: 'acc',
  platform: 'web',
  moduleId,
  stepIdx,
  prefixRequest,
});

async function refusal(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (error) {
    return error;
  }
  throw new Error('expected the transition to be refused, but it succeeded');
}

// under CI a missing redis-server fails in startRedisServer; elsewhere the test is skipped
describe.skipIf(!CI && redisServerBinary() === null)('RedisChainState out of memory', () => {
  it('refuses a writing transition with a retryable BACKEND_OUT_OF_MEMORY and writes nothing of it', async () => {
    const server = await startRedisServer();
    const admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
    const backend = new RedisBackend({ redis: server.url, keyPrefix: PREFIX });
    const keys = new ChainKeyBuilder();
    const state = new RedisChainState(backend, { keys });
    const k = (key: string): string => PREFIX + key;
    try {
      await backend.connect();
      const root = node('m');
      const children = [node('m', 1, 'GET /a'), node('m', 1, 'GET /b')];

      // warm up: the commit script is loaded, so the refusal below comes from its writes
      const warm = node('warm');
      const w = await state.claim({
        node: warm,
        owner: 'w1',
        leaseMs: 60_000,
        epoch: 0,
        root: true,
      });
      expect(
        await state.commitSuccess({
          node: warm,
          owner: 'w1',
          version: w.version,
          successors: [],
          items: ['warm:1', 'warm:2'],
        }),
      ).toBe(CommitCode.COMMIT_OK);
      expect(await state.promoteDueRetries('task-oom', 10)).toEqual([]);
      // warm:1 is leased to a relay that dies (its lease runs out), warm:2 waits in the outbox
      expect(await state.takeOutbox('task-oom', 1, 1)).toEqual(['warm:1']);
      expect(await state.ackOutbox('task-oom', ['never-leased'])).toBe(0);
      await new Promise((r) => setTimeout(r, 10));

      // a failed node with a retry that is due
      const failed = node('retry');
      const f = await state.claim({
        node: failed,
        owner: 'w1',
        leaseMs: 60_000,
        epoch: 0,
        root: true,
      });
      expect(
        await state.commitError({ node: failed, owner: 'w1', version: f.version, errorHash: 'h' }),
      ).toBe(CommitErrorCode.ERROR_EMIT_OK);
      expect(
        await state.retrySchedule({
          node: failed,
          attempt: 1,
          maxRetries: 3,
          delayMs: 0,
          message: 'retry:1',
          allowed: true,
        }),
      ).toBe(RetryScheduleCode.RETRY_SCHEDULED);
      const outboxKey = k(keys.outbox('task-oom'));
      const leasesKey = k(keys.outboxLeases('task-oom'));
      const retryKey = k(keys.retryZset('task-oom'));
      const leasesBefore = await admin.zrange(leasesKey, 0, -1, 'WITHSCORES');
      expect(leasesBefore[0]).toBe('warm:1');
      expect(await admin.lrange(outboxKey, 0, -1)).toEqual(['warm:2']);
      expect(await admin.zrange(retryKey, 0, -1)).toEqual(['retry:1']);

      // the node is claimed before memory runs out
      const c = await state.claim({
        node: root,
        owner: 'w1',
        leaseMs: 60_000,
        epoch: 0,
        root: true,
      });
      expect(c).toMatchObject({ code: ClaimCode.EXECUTE, version: 1 });

      // fill memory until writes are refused
      const info = await admin.info('memory');
      const used = Number(/used_memory:(\d+)/.exec(info)![1]);
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', String(used + 512 * 1024));
      const filler = 'x'.repeat(8 * 1024);
      let refused: unknown = null;
      for (let i = 0; i < 2_000 && refused === null; i++) {
        try {
          await admin.set(`fill:${i}`, filler);
        } catch (error) {
          refused = error;
        }
      }
      expect(String(refused)).toMatch(/OOM/);
      // keep a margin below what is used, so that small swings (client buffers) cannot let a write in
      const usedNow = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
      await admin.config('SET', 'maxmemory', String(Math.floor(usedNow * 0.8)));
      await expect(admin.set('probe', 'x')).rejects.toThrow(/OOM/);

      // a reading transition still answers
      expect(
        (await state.claim({ node: root, owner: 'w2', leaseMs: 60_000, epoch: 0, root: true }))
          .code,
      ).toBe(ClaimCode.LOCKED_BY_OTHER);

      // the commit must write: it is refused, retryably
      const commit = {
        node: root,
        owner: 'w1',
        version: c.version,
        successors: children.map((n) => ({ node: n, message: `ptm:${n.prefixRequest}` })),
        items: ['item'],
      };
      const error = await refusal(state.commitSuccess(commit));
      expect(isMocraError(error), String(error)).toBe(true);
      expect(error).toMatchObject({ code: ErrorCode.BACKEND_OUT_OF_MEMORY, retryable: true });
      expect(String((error as Error).message)).toMatch(/OOM/);

      // ...and nothing of it was written
      const ptm = k(keys.ptm(root.taskId, root));
      expect(await admin.hmget(ptm, 'status', 'owner', 'version')).toEqual([
        'processing',
        'w1',
        '1',
      ]);
      for (const n of children) expect(await admin.exists(k(keys.ptm(n.taskId, n)))).toBe(0);
      expect(await admin.exists(k(keys.advanceGate(root.taskId, root)))).toBe(0);
      expect(await admin.lrange(outboxKey, 0, -1)).toEqual(['warm:2']);

      // other writing transitions are refused too, without counting anything
      await refusal(
        state.thresholdDecide({
          taskId: 'task-oom',
          moduleId: 'm',
          moduleThreshold: 5,
          taskThreshold: 10,
          retryAfterMs: 0,
        }),
      );
      expect(await admin.exists(k(keys.moduleThreshold('task-oom', 'm')))).toBe(0);
      await refusal(
        state.commitError({
          node: root,
          owner: 'w1',
          version: 1,
          errorHash: 'h',
          message: 'error:root',
        }),
      );
      expect(await admin.hget(ptm, 'status')).toBe('processing');
      expect(await admin.exists(k(keys.errorEmit(root.taskId, root, 'h')))).toBe(0);
      // taking the outbox moves nothing: the expired lease is not renewed, warm:2 stays queued
      await refusal(state.takeOutbox('task-oom', 10, 60_000));
      expect(await admin.zrange(leasesKey, 0, -1, 'WITHSCORES')).toEqual(leasesBefore);
      expect(await admin.lrange(outboxKey, 0, -1)).toEqual(['warm:2']);
      // promoting due retries moves nothing: the retry stays in its set, the outbox is unchanged
      await refusal(state.promoteDueRetries('task-oom', 10));
      expect(await admin.zrange(retryKey, 0, -1)).toEqual(['retry:1']);
      expect(await admin.lrange(outboxKey, 0, -1)).toEqual(['warm:2']);

      // once memory is available again, the same commit succeeds, once
      await admin.config('SET', 'maxmemory', '0');
      expect(await state.commitSuccess(commit)).toBe(CommitCode.COMMIT_OK);
      expect(await state.commitSuccess(commit)).toBe(CommitCode.ALREADY_COMMITTED);
      // the dead relay's entry first, then the queue in commit order; each published once acked
      const taken = await state.takeOutbox('task-oom', 10, 60_000);
      expect(taken).toEqual(['warm:1', 'warm:2', 'ptm:GET /a', 'ptm:GET /b', 'item']);
      expect(await state.ackOutbox('task-oom', taken)).toBe(5);
      expect(await state.promoteDueRetries('task-oom', 10)).toEqual(['retry:1']);
      expect(await state.takeOutbox('task-oom', 10, 60_000)).toEqual(['retry:1']);
      expect(await state.ackOutbox('task-oom', ['retry:1'])).toBe(1);
      expect(await admin.exists(outboxKey)).toBe(0);
      expect(await admin.exists(leasesKey)).toBe(0);
    } finally {
      await backend.close();
      admin.disconnect();
      await server.stop();
    }
  }, 30_000);
});
