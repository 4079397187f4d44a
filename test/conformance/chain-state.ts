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
  RenewCode,
  RetryScheduleCode,
  TerminateCode,
  TerminatedCode,
  ThresholdCode,
  type ChainStateStore,
  type NodeAddress,
} from '../../src/chain/state/index.js';
import type { ManualClock } from '../../src/internal/clock.js';
import { ChainKeyBuilder } from '../../src/keys/chain-key-builder.js';
import type { CacheService } from '../../src/store/types.js';
import { commitThenClaimTests } from './chain-state-commit-claim.js';
import { child, root } from './chain-nodes.js';

export interface ChainStateHarness {
  state: ChainStateStore;
  clock: ManualClock;
  /** The store under the state, to plant a key of the wrong type (keys as the builder makes them). */
  raw: Pick<CacheService, 'set' | 'del' | 'get'>;
  cleanup(): Promise<void>;
}

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

    it('renewLease: RENEWED extends the live claim (another owner stays LOCKED_BY_OTHER past the first lease); FENCED for another owner or version, after a recovery, a takeover or a commit', async () => {
      expect(
        (await s.renewLease({ node: root, owner: 'w1', version: 1, leaseMs: 1_000 })).code,
      ).toBe(RenewCode.FENCED); // never claimed
      const c = await claim(root, 'w1');
      h.clock.advance(800);
      const renew = (owner = 'w1', version = c.version) =>
        s.renewLease({ node: root, owner, version, leaseMs: 1_000 });
      expect(await renew()).toEqual({ code: RenewCode.RENEWED, leaseUntil: h.clock.now() + 1_000 });
      h.clock.advance(800); // past the first lease, within the renewed one
      expect((await claim(root, 'w2')).code).toBe(ClaimCode.LOCKED_BY_OTHER);
      expect(await s.recoverZombie(root)).toBe(RecoverCode.NOT_EXPIRED);
      expect((await renew('w2')).code).toBe(RenewCode.FENCED);
      expect((await renew('w1', c.version + 1)).code).toBe(RenewCode.FENCED);
      // the lease runs out: recovered, the old claim cannot be renewed any more
      h.clock.advance(1_001);
      expect(await s.recoverZombie(root)).toBe(RecoverCode.RECOVERED);
      expect((await renew()).code).toBe(RenewCode.FENCED);
      // taken over by another owner: only the new claim renews; once done, nothing does
      const d = await claim(root, 'w2');
      expect((await renew()).code).toBe(RenewCode.FENCED);
      expect((await renew('w2', d.version)).code).toBe(RenewCode.RENEWED);
      await s.commitSuccess({
        node: root,
        owner: 'w2',
        version: d.version,
        successors: [],
        items: [],
      });
      expect((await renew('w2', d.version)).code).toBe(RenewCode.FENCED);
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
      await s.terminateMark('t1', 'r1', 'shop', 'threshold');
      expect(await s.retrySchedule({ ...base, attempt: 1 })).toBe(
        RetryScheduleCode.RETRY_NOT_ALLOWED,
      );
    });

    it('thresholdDecide: CONTINUE, RETRY_AFTER, TERMINATE_MODULE (>=) writing the module mark, TERMINATE_TASK writing the task mark', async () => {
      const d = (moduleId: string, retryAfterMs = 0) =>
        s.thresholdDecide({
          taskId: 't1',
          runId: 'r1',
          moduleId,
          moduleThreshold: 3,
          taskThreshold: 5,
          retryAfterMs,
        });
      expect(await d('a')).toEqual({
        code: ThresholdCode.CONTINUE,
        moduleErrors: 1,
        taskErrors: 1,
        marked: [],
      });
      expect(await d('a', 200)).toEqual({
        code: ThresholdCode.RETRY_AFTER,
        moduleErrors: 2,
        taskErrors: 2,
        marked: [],
      });
      expect(await d('a')).toEqual({
        code: ThresholdCode.TERMINATE_MODULE,
        moduleErrors: 3,
        taskErrors: 3,
        marked: ['module'],
      });
      expect(await s.terminated('t1', 'r1', 'a')).toEqual({
        code: TerminatedCode.MODULE_TERMINATED,
        reason: 'threshold: module errors reached (module 3, task 3)',
      });
      // the module is terminated: decided again without counting or marking
      expect(await d('a')).toEqual({
        code: ThresholdCode.TERMINATE_MODULE,
        moduleErrors: 3,
        taskErrors: 3,
        marked: [],
      });
      expect((await d('b')).code).toBe(ThresholdCode.CONTINUE);
      expect(await d('c')).toEqual({
        code: ThresholdCode.TERMINATE_TASK,
        moduleErrors: 1,
        taskErrors: 5,
        marked: ['task'],
      });
      expect(await s.terminated('t1', 'r1', 'b')).toEqual({
        code: TerminatedCode.TASK_TERMINATED,
        reason: 'threshold: task errors reached (module 1, task 5)',
      });
      expect((await claim(root)).reason).toBe('terminated');
    });

    // issue 17 item 2: one failure reaching both thresholds terminated only the module
    it('thresholdDecide: one failure reaching both thresholds terminates the module, then the task, in one decision', async () => {
      let failures = 0;
      const d = () =>
        s.thresholdDecide({
          taskId: 't1',
          runId: 'r1',
          moduleId: 'shop',
          moduleThreshold: 3,
          taskThreshold: 3,
          retryAfterMs: 0,
          failureId: `f${++failures}`,
        });
      expect((await d()).code).toBe(ThresholdCode.CONTINUE);
      expect((await d()).code).toBe(ThresholdCode.CONTINUE);
      expect(await d()).toEqual({
        code: ThresholdCode.TERMINATE_TASK,
        moduleErrors: 3,
        taskErrors: 3,
        marked: ['module', 'task'],
      });
      // both marks are there: the task's answers first, the module's is set too
      expect(await s.terminated('t1', 'r1', 'shop')).toEqual({
        code: TerminatedCode.TASK_TERMINATED,
        reason: 'threshold: task errors reached (module 3, task 3)',
      });
      expect(await s.terminateMark('t1', 'r1', 'shop', 'again')).toBe(
        TerminateCode.ALREADY_TERMINATED,
      );
      expect(await s.terminateMark('t1', 'r1', undefined, 'again')).toBe(
        TerminateCode.ALREADY_TERMINATED,
      );
      // the task's other modules stop too, and nothing is counted or marked again
      expect((await claim({ ...root, moduleId: 'blog' })).reason).toBe('terminated');
      expect(await d()).toEqual({
        code: ThresholdCode.TERMINATE_TASK,
        moduleErrors: 3,
        taskErrors: 3,
        marked: [],
      });
    });

    it('thresholdDecide: a failure decided twice (same failureId) is counted once and gets the same decision', async () => {
      const d = (failureId: string | undefined, retryAfterMs = 0) =>
        s.thresholdDecide({
          taskId: 't1',
          runId: 'r1',
          moduleId: 'a',
          moduleThreshold: 3,
          taskThreshold: 10,
          retryAfterMs,
          ...(failureId === undefined ? {} : { failureId }),
        });
      expect(await d('n1@1', 50)).toEqual({
        code: ThresholdCode.RETRY_AFTER,
        moduleErrors: 1,
        taskErrors: 1,
        marked: [],
      });
      // the duplicate delivery: same decision, nothing counted
      expect(await d('n1@1')).toEqual({
        code: ThresholdCode.RETRY_AFTER,
        moduleErrors: 1,
        taskErrors: 1,
        marked: [],
      });
      expect(await d('n2@1')).toEqual({
        code: ThresholdCode.CONTINUE,
        moduleErrors: 2,
        taskErrors: 2,
        marked: [],
      });
      expect(await d('n3@1')).toEqual({
        code: ThresholdCode.TERMINATE_MODULE,
        moduleErrors: 3,
        taskErrors: 3,
        marked: ['module'],
      });
      expect(await d('n3@1')).toEqual({
        code: ThresholdCode.TERMINATE_MODULE,
        moduleErrors: 3,
        taskErrors: 3,
        marked: [],
      });
      // the decision wrote the module's mark: a new failure is not counted either
      expect(await d('n4@1')).toEqual({
        code: ThresholdCode.TERMINATE_MODULE,
        moduleErrors: 3,
        taskErrors: 3,
        marked: [],
      });
    });

    it('thresholds and terminate marks are per run: another run of the task is neither counted nor terminated', async () => {
      const decide = (runId: string) =>
        s.thresholdDecide({
          taskId: 't1',
          runId,
          moduleId: 'shop',
          moduleThreshold: 1,
          taskThreshold: 1,
          retryAfterMs: 0,
        });
      expect((await decide('r1')).code).toBe(ThresholdCode.TERMINATE_TASK);
      expect((await s.terminated('t1', 'r1', 'shop')).code).toBe(TerminatedCode.TASK_TERMINATED);
      expect(await s.terminated('t1', 'r2', 'shop')).toEqual({
        code: TerminatedCode.ACTIVE,
        reason: '',
      });
      expect(await decide('r2')).toMatchObject({ moduleErrors: 1, taskErrors: 1 });
      expect(await s.terminateMark('t1', 'r3', undefined, 'stop')).toBe(TerminateCode.TERMINATED);
      expect((await s.terminated('t1', 'r3', 'shop')).code).toBe(TerminatedCode.TASK_TERMINATED);
      expect((await s.terminated('t1', 'r4', 'shop')).code).toBe(TerminatedCode.ACTIVE);
    });

    it('a terminate mark written before the run has a record (or before its module was dispatched) stops its claims', async () => {
      const running = (...ids: string[]) =>
        ids.map((moduleId) => ({ moduleId, state: 'running' as const }));
      const terminated = { code: ClaimCode.STALE_STEP, reason: 'terminated' };
      // the dispatch creates the record (no runStart)
      await s.terminateMark('t1', 'r1', 'shop', 'before the dispatch');
      await s.runDispatch('t1', 'r1', running('shop', 'blog'));
      expect(await claim(root)).toMatchObject(terminated);
      expect((await claim({ ...root, moduleId: 'blog' })).code).toBe(ClaimCode.EXECUTE);
      // the task's mark
      await s.terminateMark('t1', 'r2', undefined, 'before the dispatch');
      await s.runDispatch('t1', 'r2', running('shop'));
      expect(await claim({ ...root, runId: 'r2' })).toMatchObject(terminated);
      // the dispatch adds a module the start did not name
      await s.terminateMark('t1', 'r3', 'blog', 'before the start');
      await s.runStart('t1', 'r3', ['shop']);
      await s.runDispatch('t1', 'r3', running('shop', 'blog'));
      expect(await claim({ ...root, runId: 'r3', moduleId: 'blog' })).toMatchObject(terminated);
      expect((await claim({ ...root, runId: 'r3' })).code).toBe(ClaimCode.EXECUTE);
    });

    it('terminateMark: TERMINATED then ALREADY_TERMINATED; terminated work is STALE_STEP and decided without counting', async () => {
      expect(await s.terminateMark('t1', 'r1', 'shop', 'too many errors')).toBe(
        TerminateCode.TERMINATED,
      );
      expect(await s.terminateMark('t1', 'r1', 'shop', 'again')).toBe(
        TerminateCode.ALREADY_TERMINATED,
      );
      expect(await claim(root)).toMatchObject({ code: ClaimCode.STALE_STEP, reason: 'terminated' });
      const other = { ...root, moduleId: 'blog' };
      expect((await claim(other)).code).toBe(ClaimCode.EXECUTE);
      expect(
        (
          await s.thresholdDecide({
            taskId: 't1',
            runId: 'r1',
            moduleId: 'shop',
            moduleThreshold: 9,
            taskThreshold: 9,
            retryAfterMs: 0,
          })
        ).code,
      ).toBe(ThresholdCode.TERMINATE_MODULE);
      expect(await s.terminateMark('t1', 'r1', undefined, 'task threshold')).toBe(
        TerminateCode.TERMINATED,
      );
      expect(await s.terminateMark('t1', 'r1', undefined, 'again')).toBe(
        TerminateCode.ALREADY_TERMINATED,
      );
      expect((await claim({ ...other, prefixRequest: 'z', stepIdx: 0 })).reason).toBe('terminated');
      expect(
        (
          await s.thresholdDecide({
            taskId: 't1',
            runId: 'r1',
            moduleId: 'blog',
            moduleThreshold: 9,
            taskThreshold: 9,
            retryAfterMs: 0,
          })
        ).code,
      ).toBe(ThresholdCode.TERMINATE_TASK);
    });

    it('claim takes over exactly the processing nodes whose lease ran out (reason expired); committed, failed and live nodes are not', async () => {
      const n = (p: string): NodeAddress => ({ ...root, prefixRequest: p });
      const claim = (node: NodeAddress, leaseMs: number) =>
        s.claim({ node, owner: 'w1', leaseMs, epoch: 0, root: true });
      const a = await claim(n('a'), 1_000); // will expire, stays processing
      await claim(n('b'), 1_000); // will expire, but is committed first
      const c = await claim(n('c'), 1_000); // fails (error recorded)
      await claim(n('d'), 60_000); // live lease
      expect(
        await s.commitSuccess({ node: n('b'), owner: 'w1', version: 1, successors: [], items: [] }),
      ).toBe(CommitCode.COMMIT_OK);
      expect(
        await s.commitError({ node: n('c'), owner: 'w1', version: c.version, errorHash: 'h' }),
      ).toBe(CommitErrorCode.ERROR_EMIT_OK);
      const take = (p: string) =>
        s.claim({ node: n(p), owner: 'w2', leaseMs: 1_000, epoch: 0, root: true });
      expect((await take('a')).code).toBe(ClaimCode.LOCKED_BY_OTHER); // nothing expired yet
      h.clock.advance(1_001);
      expect((await take('b')).code).toBe(ClaimCode.DUPLICATE_DONE);
      expect(await take('c')).toMatchObject({ code: ClaimCode.STALE_STEP, reason: 'failed' });
      expect((await take('d')).code).toBe(ClaimCode.LOCKED_BY_OTHER); // live lease
      // 'a' ran out: a new owner takes it over with a higher version; the old one is fenced
      const again = await take('a');
      expect(again).toMatchObject({
        code: ClaimCode.EXECUTE,
        version: a.version + 1,
        reason: 'expired',
      });
      expect(await take('a')).toMatchObject({ code: ClaimCode.EXECUTE, reason: '' }); // a replay
      expect(
        await s.commitSuccess({
          node: n('a'),
          owner: 'w1',
          version: a.version,
          successors: [],
          items: [],
        }),
      ).toBe(CommitCode.FENCING_REJECT);
      // the live lease of 'd' is left alone until it runs out
      h.clock.advance(58_000);
      expect((await take('d')).code).toBe(ClaimCode.LOCKED_BY_OTHER);
      h.clock.advance(2_000);
      expect(await take('d')).toMatchObject({ code: ClaimCode.EXECUTE, reason: 'expired' });
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

    it('commitSuccess: a de-duplication key makes one node per run and module, across commits and within one; duplicates are reported, not queued', async () => {
      const c = await claim(root);
      // the root routes two pages that both link to /x (keyed), and a second run's /x is its own
      const p1 = child('GET /p1');
      const p2 = child('GET /p2');
      expect(
        await s.commitSuccessDetailed({
          node: root,
          owner: 'w1',
          version: c.version,
          successors: [
            { node: p1, message: 'ptm:p1', key: '/p1' },
            { node: p2, message: 'ptm:p2', key: '/p2' },
            { node: child('GET /p1-again'), message: 'ptm:p1-again', key: '/p1' },
          ],
          items: [],
        }),
      ).toEqual({ code: CommitCode.COMMIT_OK, created: 2, duplicates: [2] });
      expect(await drain()).toEqual(['ptm:p1', 'ptm:p2']);
      const x = (parent: NodeAddress, prefix: string, runId = parent.runId) => ({
        node: { ...parent, runId, stepIdx: parent.stepIdx + 1, prefixRequest: prefix },
        message: `ptm:${runId}:${prefix}`,
        key: '/x',
      });
      const c1 = await claim(p1, 'w1', 0, false);
      expect(
        await s.commitSuccessDetailed({
          node: p1,
          owner: 'w1',
          version: c1.version,
          successors: [x(p1, 'GET /p1#r0'), x(p1, 'GET /p1#r1', 'run-2')],
          items: ['i1'],
        }),
      ).toEqual({ code: CommitCode.COMMIT_OK, created: 2, duplicates: [] });
      const c2 = await claim(p2, 'w2', 0, false);
      expect(
        await s.commitSuccessDetailed({
          node: p2,
          owner: 'w2',
          version: c2.version,
          successors: [x(p2, 'GET /p2#r0'), { node: child('GET /p2#r1'), message: 'ptm:free' }],
          items: ['i2'],
        }),
      ).toEqual({ code: CommitCode.COMMIT_OK, created: 1, duplicates: [0] });
      // a replay reports the commit, not the duplicates again
      expect(
        await s.commitSuccessDetailed({
          node: p2,
          owner: 'w2',
          version: c2.version,
          successors: [x(p2, 'GET /p2#r0')],
          items: ['i2'],
        }),
      ).toEqual({ code: CommitCode.ALREADY_COMMITTED, created: 0, duplicates: [] });
      expect(await drain()).toEqual([
        `ptm:${root.runId}:GET /p1#r0`,
        'ptm:run-2:GET /p1#r1',
        'i1',
        'ptm:free',
        'i2',
      ]);
      // the duplicate was never created: its claim finds no node
      expect(
        (await claim({ ...p2, stepIdx: 2, prefixRequest: 'GET /p2#r0' }, 'w3', 0, false)).code,
      ).toBe(ClaimCode.OUT_OF_ORDER);
    });

    const fail = async (node: NodeAddress, message?: string): Promise<void> => {
      const c = await claim(node);
      expect(c.code).toBe(ClaimCode.EXECUTE);
      expect(
        await s.commitError({
          node,
          owner: 'w1',
          version: c.version,
          errorHash: 'h',
          ...(message === undefined ? {} : { message }),
        }),
      ).toBe(CommitErrorCode.ERROR_EMIT_OK);
    };
    const commitItems = async (node: NodeAddress, items: string[]): Promise<void> => {
      const c = await claim(node);
      expect(
        await s.commitSuccess({ node, owner: 'w1', version: c.version, successors: [], items }),
      ).toBe(CommitCode.COMMIT_OK);
    };

    // issue 17 item 1: Lua's unpack() is limited to ~8,000 values; a script that failed after its
    // first write left the node done with no successors. Every large batch must go through whole.
    it('commitSuccess: an 8,200-way fan-out commits whole — every successor created and queued, then the items', async () => {
      const c = await claim(root);
      const n = 8_200;
      const successors = Array.from({ length: n }, (_, i) => ({
        node: child(`GET /p/${i}`),
        message: `ptm:${i}`,
      }));
      expect(
        await s.commitSuccess({
          node: root,
          owner: 'w1',
          version: c.version,
          successors,
          items: ['item:1', 'item:2'],
        }),
      ).toBe(CommitCode.COMMIT_OK);
      const entries = await s.takeOutbox('t1', n + 10, 60_000);
      expect(entries).toHaveLength(n + 2);
      expect(entries.slice(0, 3)).toEqual(['ptm:0', 'ptm:1', 'ptm:2']);
      expect(entries.slice(-3)).toEqual([`ptm:${n - 1}`, 'item:1', 'item:2']);
      expect(await s.ackOutbox('t1', entries)).toBe(n + 2);
      for (const i of [0, 4_096, n - 1])
        expect(await claim(child(`GET /p/${i}`), 'w2')).toMatchObject({
          code: ClaimCode.EXECUTE,
          version: 1,
        });
      // a replay writes nothing again
      expect(
        await s.commitSuccess({
          node: root,
          owner: 'w1',
          version: c.version,
          successors,
          items: ['item:1', 'item:2'],
        }),
      ).toBe(CommitCode.ALREADY_COMMITTED);
      expect(await s.takeOutbox('t1', 10, 60_000)).toEqual([]);
    });

    // nothing that can fail runs after a transition's first write: a key of the wrong type where
    // a transition would write later fails it before it writes anything
    it('a key of the wrong type fails a transition before its first write: nothing is half-written', async () => {
      const k = new ChainKeyBuilder();
      const plant = (key: string) => h.raw.set(key, 'not-a-list-or-zset');
      const remove = (key: string) => h.raw.del(key);
      const outbox = k.outbox('t1');
      expect(await claim(root)).toMatchObject({ code: ClaimCode.EXECUTE, version: 1 });
      // commitSuccess: the outbox
      const commit = () =>
        s.commitSuccess({
          node: root,
          owner: 'w1',
          version: 1,
          successors: [{ node: child('GET /a'), message: 'ptm:a' }],
          items: ['item'],
        });
      await plant(outbox);
      await expect(commit()).rejects.toThrow();
      await remove(outbox);
      expect((await claim(child('GET /a'))).code).toBe(ClaimCode.OUT_OF_ORDER); // not created
      expect(await commit()).toBe(CommitCode.COMMIT_OK);
      expect(await drain()).toEqual(['ptm:a', 'item']);
      // commitError: the outbox
      const a = await claim(child('GET /a'));
      const fail = () =>
        s.commitError({
          node: child('GET /a'),
          owner: 'w1',
          version: a.version,
          errorHash: 'h',
          message: 'err:a',
        });
      await plant(outbox);
      await expect(fail()).rejects.toThrow();
      await remove(outbox);
      expect(await fail()).toBe(CommitErrorCode.ERROR_EMIT_OK);
      expect(await drain()).toEqual(['err:a']);
      // retrySchedule: the retry set
      const retries = k.retryZset('t1');
      const retry = () =>
        s.retrySchedule({
          node: child('GET /a'),
          attempt: 1,
          maxRetries: 3,
          delayMs: 0,
          message: 'retry:a',
          allowed: true,
        });
      await plant(retries);
      await expect(retry()).rejects.toThrow();
      await remove(retries);
      expect((await claim(child('GET /a'), 'w1', 1)).code).toBe(ClaimCode.OUT_OF_ORDER); // epoch kept
      expect(await retry()).toBe(RetryScheduleCode.RETRY_SCHEDULED);
    });

    it('a run key index of the wrong type fails a commit before its first write (the index is its first write)', async () => {
      const k = new ChainKeyBuilder();
      expect(await s.runStart('t1', 'r1', ['shop'])).toBe(true);
      const c = await claim(root);
      await h.raw.set(k.runKeys('t1', 'r1'), 'not-a-zset');
      const commit = () =>
        s.commitSuccess({
          node: root,
          owner: 'w1',
          version: c.version,
          successors: [{ node: child('GET /a'), message: 'ptm:a' }],
          items: ['item'],
        });
      const fail = () =>
        s.commitError({
          node: root,
          owner: 'w1',
          version: c.version,
          errorHash: 'h',
          message: 'e',
        });
      await expect(commit()).rejects.toThrow();
      await expect(fail()).rejects.toThrow();
      // nothing written: no successor, nothing queued, the node still this owner's claim
      expect((await claim(child('GET /a'))).code).toBe(ClaimCode.OUT_OF_ORDER);
      expect(await drain()).toEqual([]);
      expect(await claim(root)).toMatchObject({ code: ClaimCode.EXECUTE, version: c.version });
      expect((await s.runRead('t1', 'r1'))?.modules['shop']?.nodes).toMatchObject({
        done: 0,
        failed: 0,
      });
      await h.raw.del(k.runKeys('t1', 'r1'));
      expect(await commit()).toBe(CommitCode.COMMIT_OK);
      expect(await drain()).toEqual(['ptm:a', 'item']);
    });

    it('no transition reads or writes the lease index of key layout 2 (a claim takes over an expired lease itself)', async () => {
      const k = new ChainKeyBuilder();
      // an index an earlier release left, here of a type every index command would fail on
      const leases = k.leases('t1');
      await h.raw.set(leases, 'left-by-layout-2');
      const c = await claim(root, 'w1');
      expect(c).toMatchObject({ code: ClaimCode.EXECUTE, reason: '' });
      expect(
        (await s.renewLease({ node: root, owner: 'w1', version: c.version, leaseMs: 1_000 })).code,
      ).toBe(RenewCode.RENEWED);
      h.clock.advance(1_001);
      // the lease ran out: the next claim takes it over (reason 'expired', the version fences w1)
      const d = await claim(root, 'w2');
      expect(d).toMatchObject({
        code: ClaimCode.EXECUTE,
        version: c.version + 1,
        reason: 'expired',
      });
      expect(
        await s.commitSuccess({
          node: root,
          owner: 'w1',
          version: c.version,
          successors: [],
          items: [],
        }),
      ).toBe(CommitCode.FENCING_REJECT);
      expect(
        await s.commitSuccess({
          node: root,
          owner: 'w2',
          version: d.version,
          successors: [{ node: child('GET /a'), message: 'ptm:a' }],
          items: [],
        }),
      ).toBe(CommitCode.COMMIT_OK);
      const a = await claim(child('GET /a'), 'w1');
      h.clock.advance(1_001);
      expect(await s.recoverZombie(child('GET /a'))).toBe(RecoverCode.RECOVERED);
      const b = await claim(child('GET /a'), 'w2');
      expect(b).toMatchObject({ code: ClaimCode.EXECUTE, version: a.version + 1, reason: '' });
      expect(
        await s.commitError({
          node: child('GET /a'),
          owner: 'w2',
          version: b.version,
          errorHash: 'h',
        }),
      ).toBe(CommitErrorCode.ERROR_EMIT_OK);
      expect(await h.raw.get(leases)).toBe('left-by-layout-2');
    });

    it('takeOutbox/ackOutbox: 9,000 entries are taken and acknowledged in one call each', async () => {
      const items = Array.from({ length: 9_000 }, (_, i) => `i${i}`);
      await commitItems(root, items);
      const taken = await s.takeOutbox('t1', 9_000, 60_000);
      expect(taken).toEqual(items);
      expect(await s.ackOutbox('t1', taken)).toBe(9_000);
      h.clock.advance(120_000); // acknowledged entries never come back
      expect(await s.takeOutbox('t1', 10, 1_000)).toEqual([]);
    });

    it('promoteDueRetries: 9,000 due retries are promoted in one call, each once', async () => {
      const n = 9_000;
      const nodes = Array.from({ length: n }, (_, i) => ({ ...root, moduleId: `m${i}` }));
      for (let from = 0; from < n; from += 500) {
        await Promise.all(
          nodes.slice(from, from + 500).map(async (node, j) => {
            await fail(node);
            expect(
              await s.retrySchedule({
                node,
                attempt: 1,
                maxRetries: 3,
                delayMs: 10,
                message: `retry:${from + j}`,
                allowed: true,
              }),
            ).toBe(RetryScheduleCode.RETRY_SCHEDULED);
          }),
        );
      }
      h.clock.advance(10);
      const promoted = await s.promoteDueRetries('t1', n + 1);
      expect(new Set(promoted).size).toBe(n);
      expect(await s.promoteDueRetries('t1', n)).toEqual([]);
      const taken = await s.takeOutbox('t1', n + 1, 60_000);
      expect(taken).toEqual(promoted);
    });

    it('takeOutbox/ackOutbox: a leased entry is not handed out while its lease runs; unacknowledged, it is handed out again after it (before new entries); ack removes it for good', async () => {
      await commitItems(root, ['i1', 'i2', 'i3']);
      expect(await s.takeOutbox('t1', 1, 500)).toEqual(['i1']); // this relay dies
      expect(await s.takeOutbox('t1', 10, 500)).toEqual(['i2', 'i3']);
      expect(await s.ackOutbox('t1', ['i2', 'i3'])).toBe(2);
      h.clock.advance(499);
      expect(await s.takeOutbox('t1', 10, 500)).toEqual([]);
      await commitItems({ ...root, moduleId: 'blog' }, ['j1']);
      h.clock.advance(1); // the lease of i1 ends now
      expect(await s.takeOutbox('t1', 10, 500)).toEqual(['i1', 'j1']);
      expect(await s.takeOutbox('t1', 10, 500)).toEqual([]);
      expect(await s.ackOutbox('t1', ['i1', 'j1'])).toBe(2);
      expect(await s.ackOutbox('t1', ['i1'])).toBe(0); // a second ack
      h.clock.advance(10_000);
      expect(await s.takeOutbox('t1', 10, 500)).toEqual([]);
      expect(await s.takeOutbox('t2', 10, 500)).toEqual([]); // outboxes are per task
    });

    it('ackOutbox: returns 0 for an unknown entry, an empty list, and an entry still queued (which is then handed out as usual)', async () => {
      expect(await s.ackOutbox('t1', ['nope'])).toBe(0);
      expect(await s.ackOutbox('t1', [])).toBe(0);
      await commitItems(root, ['i']);
      expect(await s.ackOutbox('t1', ['i'])).toBe(0);
      expect(await s.takeOutbox('t1', 10, 500)).toEqual(['i']);
      expect(await s.ackOutbox('t1', ['i', 'nope'])).toBe(1);
    });

    it('promoteDueRetries: moves due retries into the outbox once, earliest due first, at most max; retries not yet due stay', async () => {
      const shop = root;
      const blog = { ...root, moduleId: 'blog' };
      const news = { ...root, moduleId: 'news' };
      for (const n of [shop, blog, news]) await fail(n);
      const schedule = (node: NodeAddress, delayMs: number, message: string) =>
        s.retrySchedule({ node, attempt: 1, maxRetries: 3, delayMs, message, allowed: true });
      expect(await schedule(shop, 500, 'retry:shop')).toBe(RetryScheduleCode.RETRY_SCHEDULED);
      expect(await schedule(blog, 100, 'retry:blog')).toBe(RetryScheduleCode.RETRY_SCHEDULED);
      expect(await schedule(news, 2_000, 'retry:news')).toBe(RetryScheduleCode.RETRY_SCHEDULED);
      expect(await s.promoteDueRetries('t1', 10)).toEqual([]);
      h.clock.advance(500);
      expect(await s.promoteDueRetries('t1', 1)).toEqual(['retry:blog']);
      expect(await s.promoteDueRetries('t1', 1)).toEqual(['retry:shop']);
      expect(await s.promoteDueRetries('t1', 10)).toEqual([]);
      expect(await drain()).toEqual(['retry:blog', 'retry:shop']);
      h.clock.advance(1_499);
      expect(await s.promoteDueRetries('t1', 10)).toEqual([]);
      expect(await drain()).toEqual([]);
      h.clock.advance(1);
      expect(await s.promoteDueRetries('t1', 10)).toEqual(['retry:news']);
      expect(await s.promoteDueRetries('t1', 10)).toEqual([]);
      expect(await drain()).toEqual(['retry:news']);
      expect(await s.promoteDueRetries('t2', 10)).toEqual([]);
    });

    it('commitError: the message is queued in the outbox with ERROR_EMIT_OK only — never with ERROR_ALREADY_EMITTED or FENCING_REJECT; an empty message queues nothing', async () => {
      const c = await claim(root);
      const err = (owner: string, errorHash: string, message: string, node = root) =>
        s.commitError({ node, owner, version: c.version, errorHash, message });
      expect(await err('w2', 'h', 'err:foreign')).toBe(CommitErrorCode.FENCING_REJECT);
      expect(await err('w1', 'h', 'err:h', child('never'))).toBe(CommitErrorCode.FENCING_REJECT);
      expect(await drain()).toEqual([]);
      expect(await err('w1', 'h', 'err:h')).toBe(CommitErrorCode.ERROR_EMIT_OK);
      expect(await err('w1', 'h', 'err:replay')).toBe(CommitErrorCode.ERROR_ALREADY_EMITTED);
      expect(await err('w1', 'other', 'err:other')).toBe(CommitErrorCode.FENCING_REJECT); // failed
      expect(await drain()).toEqual(['err:h']);
      await fail({ ...root, moduleId: 'blog' }, '');
      await fail({ ...root, moduleId: 'news' });
      expect(await drain()).toEqual([]);
    });

    it('touchTask/activeTasks: tasks touched within the window, most recent first, at most max; idle ones leave the index', async () => {
      expect(await s.activeTasks(60_000, 10)).toEqual([]);
      await s.touchTask('t1'); // T
      h.clock.advance(10);
      await s.touchTask('t2'); // T+10
      h.clock.advance(10);
      await s.touchTask('t3'); // T+20
      expect(await s.activeTasks(60_000, 10)).toEqual(['t3', 't2', 't1']);
      expect(await s.activeTasks(60_000, 2)).toEqual(['t3', 't2']);
      h.clock.advance(10);
      await s.touchTask('t1'); // T+30: touched again, now the most recent
      expect(await s.activeTasks(60_000, 10)).toEqual(['t1', 't3', 't2']);
      expect(await s.activeTasks(10, 10)).toEqual(['t1', 't3']); // T+20 is inside (>=)
      expect(await s.activeTasks(60_000, 10)).toEqual(['t1', 't3']); // t2 was dropped
      expect(await s.activeTasks(9, 10)).toEqual(['t1']);
      expect(await s.activeTasks(60_000, 10)).toEqual(['t1']);
      h.clock.advance(1_000);
      expect(await s.activeTasks(999, 10)).toEqual([]);
      await s.touchTask('t2');
      expect(await s.activeTasks(60_000, 10)).toEqual(['t2']);
    });

    it('tryLock: taken when free, renewed by its owner, refused to others while held, free again after its ttl', async () => {
      // a lock expires on the store's own clock (Redis: PX), not the test clock: move both
      const wait = async (ms: number): Promise<void> => {
        h.clock.advance(ms);
        await new Promise((r) => setTimeout(r, ms));
      };
      expect(await s.tryLock('sweep', 'w1', 300)).toBe(true);
      expect(await s.tryLock('sweep', 'w2', 300)).toBe(false);
      expect(await s.tryLock('gc', 'w2', 300)).toBe(true); // locks are per name
      await wait(150);
      expect(await s.tryLock('sweep', 'w1', 300)).toBe(true); // renewed for 300 from now
      await wait(150);
      expect(await s.tryLock('sweep', 'w2', 300)).toBe(false); // past the first ttl, still held
      await wait(320);
      expect(await s.tryLock('sweep', 'w2', 300)).toBe(true); // expired: taken by another owner
      expect(await s.tryLock('sweep', 'w1', 300)).toBe(false);
    });

    it('tryAllowFallbackOnce: ALLOWED once per node, then REFUSED', async () => {
      const n = child('GET /a', 2);
      expect(await s.tryAllowFallbackOnce(n)).toBe(FallbackCode.ALLOWED);
      expect(await s.tryAllowFallbackOnce(n)).toBe(FallbackCode.REFUSED);
      expect(await s.tryAllowFallbackOnce(child('GET /b', 2))).toBe(FallbackCode.ALLOWED);
    });

    commitThenClaimTests(() => h);
  });
}
