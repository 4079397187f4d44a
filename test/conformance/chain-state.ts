/**
 * The chain state machine conformance suite: every code of every transition is reached by a
 * named test; run against LocalChainState and RedisChainState with one manual clock.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ClaimCode,
  CommitCode,
  CommitErrorCode,
  FallbackCode,
  RecoverCode,
  ReorderCode,
  RetryScheduleCode,
  TerminateCode,
  ThresholdCode,
  type ChainStateStore,
  type NodeAddress,
} from '../../src/chain/state/index.js';
import type { ManualClock } from '../../src/internal/clock.js';

export interface ChainStateHarness {
  state: ChainStateStore;
  clock: ManualClock;
  cleanup(): Promise<void>;
}

const root: NodeAddress = {
  taskId: 't1',
  runId: 'r1',
  account: 'acc',
  platform: 'web',
  moduleId: 'shop',
  stepIdx: 0,
  prefixRequest: '',
};
const child = (prefix: string, stepIdx = 1): NodeAddress => ({
  ...root,
  stepIdx,
  prefixRequest: prefix,
});

export function runChainStateConformance(
  name: string,
  setup: () => Promise<ChainStateHarness>,
): void {
  describe(`chain state conformance: ${name}`, () => {
    let h: ChainStateHarness;
    let s: ChainStateStore;
    beforeEach(async () => {
      h = await setup();
      s = h.state;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    const claim = (node: NodeAddress, owner = 'w1', epoch = 0, rootNode = node.stepIdx === 0) =>
      s.claim({ node, owner, leaseMs: 1_000, epoch, root: rootNode });
    /** Leases up to `max` outbox entries and acknowledges them at once (a relay that publishes). */
    const drain = async (taskId = 't1', max = 10): Promise<string[]> => {
      const entries = await s.takeOutbox(taskId, max, 1_000);
      expect(await s.ackOutbox(taskId, entries)).toBe(new Set(entries).size);
      return entries;
    };

    it('claim: EXECUTE with a lease and version 1; replay by the same owner returns the same claim', async () => {
      const c = await claim(root);
      expect(c).toMatchObject({
        code: ClaimCode.EXECUTE,
        version: 1,
        leaseUntil: h.clock.now() + 1_000,
      });
      expect(await claim(root)).toMatchObject({ code: ClaimCode.EXECUTE, version: 1 });
    });

    it('claim: LOCKED_BY_OTHER while another owner holds a live lease; EXECUTE with a higher version after it expires', async () => {
      await claim(root, 'w1');
      expect(await claim(root, 'w2')).toMatchObject({
        code: ClaimCode.LOCKED_BY_OTHER,
        version: 1,
      });
      h.clock.advance(1_001);
      expect(await claim(root, 'w2')).toMatchObject({ code: ClaimCode.EXECUTE, version: 2 });
    });

    it('claim: OUT_OF_ORDER for a node its parent has not created, and for a newer epoch', async () => {
      expect((await claim(child('GET /a'))).code).toBe(ClaimCode.OUT_OF_ORDER);
      await claim(root);
      expect((await claim(root, 'w1', 1)).code).toBe(ClaimCode.OUT_OF_ORDER);
    });

    it('commitSuccess: COMMIT_OK creates successors once and queues them with the items', async () => {
      const c = await claim(root);
      const successors = [
        { node: child('GET /a'), message: 'ptm:a' },
        { node: child('GET /b'), message: 'ptm:b' },
      ];
      expect(
        await s.commitSuccess({
          node: root,
          owner: 'w1',
          version: c.version,
          successors,
          items: ['item:1'],
        }),
      ).toBe(CommitCode.COMMIT_OK);
      expect(await drain()).toEqual(['ptm:a', 'ptm:b', 'item:1']);
      expect(await drain()).toEqual([]);
      expect((await claim(child('GET /a'), 'w2')).code).toBe(ClaimCode.EXECUTE);
    });

    it('claim: DUPLICATE_DONE for a done node; commitSuccess: ALREADY_COMMITTED on replay, nothing produced twice', async () => {
      const c = await claim(root);
      const input = {
        node: root,
        owner: 'w1',
        version: c.version,
        successors: [{ node: child('GET /a'), message: 'ptm:a' }],
        items: ['i'],
      };
      expect(await s.commitSuccess(input)).toBe(CommitCode.COMMIT_OK);
      expect(await s.commitSuccess(input)).toBe(CommitCode.ALREADY_COMMITTED);
      expect((await claim(root, 'w9')).code).toBe(ClaimCode.DUPLICATE_DONE);
      expect(await drain()).toEqual(['ptm:a', 'i']);
    });

    it('commitSuccess: FENCING_REJECT for a stale owner after a takeover, and for an unclaimed node', async () => {
      const old = await claim(root, 'w1');
      h.clock.advance(1_001);
      const fresh = await claim(root, 'w2');
      expect(fresh.version).toBe(old.version + 1);
      expect(
        await s.commitSuccess({
          node: root,
          owner: 'w1',
          version: old.version,
          successors: [],
          items: [],
        }),
      ).toBe(CommitCode.FENCING_REJECT);
      expect(
        await s.commitSuccess({
          node: child('x'),
          owner: 'w1',
          version: 1,
          successors: [],
          items: [],
        }),
      ).toBe(CommitCode.FENCING_REJECT);
      expect(
        await s.commitSuccess({
          node: root,
          owner: 'w2',
          version: fresh.version,
          successors: [],
          items: [],
        }),
      ).toBe(CommitCode.COMMIT_OK);
      expect(
        await s.commitSuccess({
          node: root,
          owner: 'w1',
          version: old.version,
          successors: [],
          items: [],
        }),
      ).toBe(CommitCode.FENCING_REJECT);
    });

    it('recoverZombie: NOT_PROCESSING, NOT_EXPIRED, RECOVERED; then the old owner meets CAS_CONFLICT', async () => {
      expect(await s.recoverZombie(root)).toBe(RecoverCode.NOT_PROCESSING);
      const c = await claim(root);
      expect(await s.recoverZombie(root)).toBe(RecoverCode.NOT_EXPIRED);
      h.clock.advance(1_001);
      expect(await s.recoverZombie(root)).toBe(RecoverCode.RECOVERED);
      expect(
        await s.commitSuccess({
          node: root,
          owner: 'w1',
          version: c.version,
          successors: [],
          items: [],
        }),
      ).toBe(CommitCode.CAS_CONFLICT);
      expect((await claim(root, 'w2')).version).toBe(c.version + 1);
    });

    it('commitError: ERROR_EMIT_OK once, ERROR_ALREADY_EMITTED on replay, FENCING_REJECT for others; a failed node is STALE_STEP', async () => {
      const c = await claim(root);
      expect(
        await s.commitError({ node: root, owner: 'w2', version: c.version, errorHash: 'h' }),
      ).toBe(CommitErrorCode.FENCING_REJECT);
      expect(
        await s.commitError({ node: root, owner: 'w1', version: c.version, errorHash: 'h' }),
      ).toBe(CommitErrorCode.ERROR_EMIT_OK);
      expect(
        await s.commitError({ node: root, owner: 'w1', version: c.version, errorHash: 'h' }),
      ).toBe(CommitErrorCode.ERROR_ALREADY_EMITTED);
      expect(
        await s.commitError({ node: root, owner: 'w1', version: c.version, errorHash: 'other' }),
      ).toBe(CommitErrorCode.FENCING_REJECT);
      expect(await claim(root, 'w3')).toMatchObject({
        code: ClaimCode.STALE_STEP,
        reason: 'failed',
      });
    });

    it('retrySchedule: RETRY_SCHEDULED bumps the epoch (old deliveries become STALE_STEP); replay is idempotent; due retries are promoted to the outbox once', async () => {
      const c = await claim(root);
      await s.commitError({ node: root, owner: 'w1', version: c.version, errorHash: 'h' });
      const input = {
        node: root,
        attempt: 1,
        maxRetries: 3,
        delayMs: 500,
        message: 'retry:1',
        allowed: true,
      };
      expect(await s.retrySchedule(input)).toBe(RetryScheduleCode.RETRY_SCHEDULED);
      expect(await s.retrySchedule(input)).toBe(RetryScheduleCode.RETRY_SCHEDULED);
      expect(await claim(root, 'w1', 0)).toMatchObject({
        code: ClaimCode.STALE_STEP,
        reason: 'old_epoch',
      });
      expect(await s.promoteDueRetries('t1', 10)).toEqual([]);
      expect(await drain()).toEqual([]);
      h.clock.advance(500);
      expect(await s.promoteDueRetries('t1', 10)).toEqual(['retry:1']);
      expect(await s.promoteDueRetries('t1', 10)).toEqual([]);
      expect(await drain()).toEqual(['retry:1']);
      expect((await claim(root, 'w2', 1)).code).toBe(ClaimCode.EXECUTE);
    });

    it('retrySchedule: MAX_RETRY_EXCEEDED past maxRetries, RETRY_NOT_ALLOWED when not allowed, done, claimed or terminated', async () => {
      const c = await claim(root);
      const base = { node: root, maxRetries: 2, delayMs: 0, message: 'm', allowed: true };
      expect(await s.retrySchedule({ ...base, attempt: 3 })).toBe(
        RetryScheduleCode.MAX_RETRY_EXCEEDED,
      );
      expect(await s.retrySchedule({ ...base, attempt: 1, allowed: false })).toBe(
        RetryScheduleCode.RETRY_NOT_ALLOWED,
      );
      expect(await s.retrySchedule({ ...base, attempt: 1 })).toBe(
        RetryScheduleCode.RETRY_NOT_ALLOWED,
      ); // live claim
      await s.commitSuccess({
        node: root,
        owner: 'w1',
        version: c.version,
        successors: [],
        items: [],
      });
      expect(await s.retrySchedule({ ...base, attempt: 1 })).toBe(
        RetryScheduleCode.RETRY_NOT_ALLOWED,
      ); // done
      expect(await s.retrySchedule({ ...base, node: child('nope'), attempt: 1 })).toBe(
        RetryScheduleCode.RETRY_NOT_ALLOWED,
      );
      await s.terminateMark('t1', 'shop', 'threshold');
      expect(await s.retrySchedule({ ...base, attempt: 1 })).toBe(
        RetryScheduleCode.RETRY_NOT_ALLOWED,
      );
    });

    it('thresholdDecide: CONTINUE, RETRY_AFTER, TERMINATE_MODULE first (>=), TERMINATE_TASK as backstop', async () => {
      const d = (moduleId: string, retryAfterMs = 0) =>
        s.thresholdDecide({
          taskId: 't1',
          moduleId,
          moduleThreshold: 3,
          taskThreshold: 5,
          retryAfterMs,
        });
      expect(await d('a')).toEqual({
        code: ThresholdCode.CONTINUE,
        moduleErrors: 1,
        taskErrors: 1,
      });
      expect(await d('a', 200)).toEqual({
        code: ThresholdCode.RETRY_AFTER,
        moduleErrors: 2,
        taskErrors: 2,
      });
      expect(await d('a')).toEqual({
        code: ThresholdCode.TERMINATE_MODULE,
        moduleErrors: 3,
        taskErrors: 3,
      });
      expect((await d('b')).code).toBe(ThresholdCode.CONTINUE);
      expect(await d('c')).toEqual({
        code: ThresholdCode.TERMINATE_TASK,
        moduleErrors: 1,
        taskErrors: 5,
      });
    });

    it('terminateMark: TERMINATED then ALREADY_TERMINATED; terminated work is STALE_STEP and decided without counting', async () => {
      expect(await s.terminateMark('t1', 'shop', 'too many errors')).toBe(TerminateCode.TERMINATED);
      expect(await s.terminateMark('t1', 'shop', 'again')).toBe(TerminateCode.ALREADY_TERMINATED);
      expect(await claim(root)).toMatchObject({ code: ClaimCode.STALE_STEP, reason: 'terminated' });
      const other = { ...root, moduleId: 'blog' };
      expect((await claim(other)).code).toBe(ClaimCode.EXECUTE);
      expect(
        (
          await s.thresholdDecide({
            taskId: 't1',
            moduleId: 'shop',
            moduleThreshold: 9,
            taskThreshold: 9,
            retryAfterMs: 0,
          })
        ).code,
      ).toBe(ThresholdCode.TERMINATE_MODULE);
      expect(await s.terminateMark('t1', undefined, 'task threshold')).toBe(
        TerminateCode.TERMINATED,
      );
      expect(await s.terminateMark('t1', undefined, 'again')).toBe(
        TerminateCode.ALREADY_TERMINATED,
      );
      expect((await claim({ ...other, prefixRequest: 'z', stepIdx: 0 })).reason).toBe('terminated');
      expect(
        (
          await s.thresholdDecide({
            taskId: 't1',
            moduleId: 'blog',
            moduleThreshold: 9,
            taskThreshold: 9,
            retryAfterMs: 0,
          })
        ).code,
      ).toBe(ThresholdCode.TERMINATE_TASK);
    });

    it('reorderEnqueue: ENQUEUED then DUPLICATE_BUFFERED; the parent commit drains the buffer', async () => {
      const early = child('GET /a');
      expect(await s.reorderEnqueue(early, 'early:a')).toBe(ReorderCode.ENQUEUED);
      expect(await s.reorderEnqueue(early, 'early:a')).toBe(ReorderCode.DUPLICATE_BUFFERED);
      const c = await claim(root);
      await s.commitSuccess({
        node: root,
        owner: 'w1',
        version: c.version,
        successors: [{ node: early, message: 'ptm:a' }],
        items: [],
      });
      expect(await s.reorderEnqueue(early, 'early:a')).toBe(ReorderCode.ENQUEUED); // drained
      expect(await drain()).toEqual(['ptm:a']);
    });

    it('commitSuccess: a successor listed twice in one commit is created and queued once (regression: the Lua script queued it twice)', async () => {
      const c = await claim(root);
      const a = { node: child('GET /a'), message: 'ptm:a' };
      expect(
        await s.commitSuccess({
          node: root,
          owner: 'w1',
          version: c.version,
          successors: [a, { node: child('GET /b'), message: 'ptm:b' }, { ...a }],
          items: ['item'],
        }),
      ).toBe(CommitCode.COMMIT_OK);
      expect(await drain()).toEqual(['ptm:a', 'ptm:b', 'item']);
      expect(await claim(child('GET /a'), 'w2')).toMatchObject({
        code: ClaimCode.EXECUTE,
        version: 1,
      });
    });

    it('tryAllowFallbackOnce: ALLOWED once per node, then REFUSED', async () => {
      const n = child('GET /a', 2);
      expect(await s.tryAllowFallbackOnce(n)).toBe(FallbackCode.ALLOWED);
      expect(await s.tryAllowFallbackOnce(n)).toBe(FallbackCode.REFUSED);
      expect(await s.tryAllowFallbackOnce(child('GET /b', 2))).toBe(FallbackCode.ALLOWED);
    });
  });
}
