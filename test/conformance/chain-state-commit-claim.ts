/**
 * Conformance of a success commit that also claims the worker's next node
 * (`CommitSuccessInput.claim`): the commit, then the claim, as the two calls in that order would
 * do them; no claim when the commit did not go through; a claim that meets an error leaves the
 * commit whole and claims nothing. Run inside the chain state conformance suite, on every store.
 */
import { expect, it } from 'vitest';
import {
  ClaimCode,
  CommitCode,
  type ChainStateStore,
  type ClaimInput,
  type NodeAddress,
} from '../../src/chain/state/index.js';
import { ChainKeyBuilder } from '../../src/keys/chain-key-builder.js';
import { child, root } from './chain-nodes.js';
import type { ChainStateHarness } from './chain-state.js';

const next = (node: NodeAddress, owner = 'w2'): ClaimInput => ({
  node,
  owner,
  leaseMs: 1_000,
  epoch: 0,
  root: false,
});

/** The tests, with the suite's harness (set before each test). */
export function commitThenClaimTests(harness: () => ChainStateHarness): void {
  const state = (): ChainStateStore => harness().state;
  const claim = (node: NodeAddress, owner: string) =>
    state().claim({ node, owner, leaseMs: 1_000, epoch: 0, root: node.stepIdx === 0 });

  it('commitSuccess with a claim: the commit, then the next node claimed as a claim would (lease, version, run counters)', async () => {
    const s = state();
    const now = harness().clock.now();
    await s.runDispatch('t1', 'r1', [{ moduleId: 'shop', state: 'running' }]);
    const c = await claim(root, 'w1');
    const a = child('GET /a');
    const b = child('GET /b');
    const committed = await s.commitSuccessDetailed({
      node: root,
      owner: 'w1',
      version: c.version,
      successors: [
        { node: a, message: 'ptm:a' },
        { node: b, message: 'ptm:b' },
      ],
      items: [],
      claim: next(a),
    });
    expect(committed).toMatchObject({ code: CommitCode.COMMIT_OK, created: 2 });
    expect(committed.claimed).toEqual({
      code: ClaimCode.EXECUTE,
      version: 1,
      leaseUntil: now + 1_000,
      reason: '',
    });
    // the claim is w2's: a replay continues it, another owner is locked out
    expect(await claim(a, 'w2')).toMatchObject({ code: ClaimCode.EXECUTE, version: 1 });
    expect((await claim(a, 'w3')).code).toBe(ClaimCode.LOCKED_BY_OTHER);
    // counted as two calls count: root done, a running, b queued
    expect((await s.runRead('t1', 'r1'))?.modules['shop']?.nodes).toMatchObject({
      queued: 1,
      running: 1,
      done: 1,
    });
    // the claimed node commits with the claim's version, and claims the last one
    const last = await s.commitSuccessDetailed({
      node: a,
      owner: 'w2',
      version: 1,
      successors: [],
      items: [],
      claim: next(b),
    });
    expect(last.code).toBe(CommitCode.COMMIT_OK);
    expect(last.claimed).toMatchObject({ code: ClaimCode.EXECUTE, version: 1 });
    expect((await s.runRead('t1', 'r1'))?.modules['shop']?.nodes).toMatchObject({
      queued: 0,
      running: 1,
      done: 2,
    });
  });

  it('commitSuccess with a claim reports what the claim met: OUT_OF_ORDER, LOCKED_BY_OTHER, DUPLICATE_DONE; a replayed commit claims nothing', async () => {
    const s = state();
    const a = child('GET /a');
    const b = child('GET /b');
    const r = await claim(root, 'w1');
    // a node no commit has created
    const fromRoot = await s.commitSuccessDetailed({
      node: root,
      owner: 'w1',
      version: r.version,
      successors: [
        { node: a, message: 'ptm:a' },
        { node: b, message: 'ptm:b' },
      ],
      items: [],
      claim: next(child('GET /never')),
    });
    expect(fromRoot.code).toBe(CommitCode.COMMIT_OK);
    expect(fromRoot.claimed?.code).toBe(ClaimCode.OUT_OF_ORDER);
    // a node another owner holds a live lease on
    expect((await claim(b, 'w9')).code).toBe(ClaimCode.EXECUTE);
    const ca = await claim(a, 'w1');
    const fromA = {
      node: a,
      owner: 'w1',
      version: ca.version,
      successors: [],
      items: [],
      claim: next(b, 'w2'),
    };
    const locked = await s.commitSuccessDetailed(fromA);
    expect(locked.code).toBe(CommitCode.COMMIT_OK);
    expect(locked.claimed?.code).toBe(ClaimCode.LOCKED_BY_OTHER);
    // a node that is done
    const fromB = await s.commitSuccessDetailed({
      node: b,
      owner: 'w9',
      version: 1,
      successors: [],
      items: [],
      claim: next(a, 'w2'),
    });
    expect(fromB.code).toBe(CommitCode.COMMIT_OK);
    expect(fromB.claimed?.code).toBe(ClaimCode.DUPLICATE_DONE);
    // a replayed commit (ALREADY_COMMITTED) claims nothing
    const replay = await s.commitSuccessDetailed({ ...fromA, claim: next(child('GET /c'), 'w2') });
    expect(replay.code).toBe(CommitCode.ALREADY_COMMITTED);
    expect(replay.claimed).toBeUndefined();
  });

  it('commitSuccess with a claim: no claim when the commit does not go through (FENCING_REJECT)', async () => {
    const s = state();
    const c = await claim(root, 'w1');
    const a = child('GET /a');
    await s.commitSuccess({
      node: root,
      owner: 'w1',
      version: c.version,
      successors: [{ node: a, message: 'ptm:a' }],
      items: [],
    });
    const b = child('GET /b');
    const rejected = await s.commitSuccessDetailed({
      node: a,
      owner: 'w1',
      version: 7, // never claimed with this version
      successors: [{ node: b, message: 'ptm:b' }],
      items: [],
      claim: next(a, 'w2'),
    });
    expect(rejected.code).toBe(CommitCode.FENCING_REJECT);
    expect(rejected.claimed).toBeUndefined();
    // a is still free: the claim did not run
    expect(await claim(a, 'w3')).toMatchObject({ code: ClaimCode.EXECUTE, version: 1 });
  });

  it('commitSuccess with a claim: a claim that meets an error (a key of the wrong type) leaves the commit whole and writes nothing of the claim', async () => {
    const s = state();
    const k = new ChainKeyBuilder();
    await s.runDispatch('t1', 'r1', [{ moduleId: 'shop', state: 'running' }]);
    const c = await claim(root, 'w1');
    const a = child('GET /a');
    const bad = child('GET /bad');
    await harness().raw.set(k.ptm('t1', bad), 'not-a-hash');
    const committed = await s.commitSuccessDetailed({
      node: root,
      owner: 'w1',
      version: c.version,
      successors: [{ node: a, message: 'ptm:a' }],
      items: ['item'],
      claim: next(bad),
    });
    expect(committed.code).toBe(CommitCode.COMMIT_OK);
    expect(committed.claimed).toBeUndefined();
    expect(await harness().raw.get(k.ptm('t1', bad))).toBe('not-a-hash');
    expect((await claim(root, 'w9')).code).toBe(ClaimCode.DUPLICATE_DONE);
    expect((await s.runRead('t1', 'r1'))?.modules['shop']?.nodes).toMatchObject({
      queued: 1,
      running: 0,
      done: 1,
    });
  });

  it('commitSuccess with a claim in another module of the same run: both modules counted, the run finishes once everything is done', async () => {
    const s = state();
    await s.runDispatch('t1', 'r1', [
      { moduleId: 'shop', state: 'running' },
      { moduleId: 'blog', state: 'running' },
    ]);
    const c = await claim(root, 'w1');
    const a = child('GET /a');
    const blogRoot: NodeAddress = { ...root, moduleId: 'blog' };
    const committed = await s.commitSuccessDetailed({
      node: root,
      owner: 'w1',
      version: c.version,
      successors: [{ node: a, message: 'ptm:a' }],
      items: [],
      claim: { ...next(blogRoot), root: true },
    });
    expect(committed.claimed).toMatchObject({ code: ClaimCode.EXECUTE, version: 1 });
    const run = await s.runRead('t1', 'r1');
    expect(run?.modules['shop']?.nodes).toMatchObject({ queued: 1, running: 0, done: 1 });
    expect(run?.modules['blog']?.nodes).toMatchObject({ queued: 0, running: 1, done: 0 });
    // blog's root commits, claiming shop's last node; then that one commits: all done
    const blog = await s.commitSuccessDetailed({
      node: blogRoot,
      owner: 'w2',
      version: 1,
      successors: [],
      items: [],
      claim: next(a, 'w3'),
    });
    expect(blog.claimed).toMatchObject({ code: ClaimCode.EXECUTE });
    expect((await s.runRead('t1', 'r1'))?.state).toBe('running');
    expect(
      await s.commitSuccess({ node: a, owner: 'w3', version: 1, successors: [], items: [] }),
    ).toBe(CommitCode.COMMIT_OK);
    const done = await s.runRead('t1', 'r1');
    expect(done?.state).toBe('done');
    expect(done?.modules['shop']?.state).toBe('done');
    expect(done?.modules['blog']?.state).toBe('done');
  });

  it('commitSuccess with a claim that meets a terminate mark of its module: the commit counted, the module settled terminated, no claim', async () => {
    const s = state();
    await s.runDispatch('t1', 'r1', [{ moduleId: 'shop', state: 'running' }]);
    const c = await claim(root, 'w1');
    const a = child('GET /a');
    const b = child('GET /b');
    await s.commitSuccess({
      node: root,
      owner: 'w1',
      version: c.version,
      successors: [
        { node: a, message: 'ptm:a' },
        { node: b, message: 'ptm:b' },
      ],
      items: [],
    });
    const ca = await claim(a, 'w1');
    await s.terminateMark('t1', 'r1', 'shop', 'stop');
    const committed = await s.commitSuccessDetailed({
      node: a,
      owner: 'w1',
      version: ca.version,
      successors: [],
      items: ['item'],
      claim: next(b),
    });
    expect(committed.code).toBe(CommitCode.COMMIT_OK);
    expect(committed.claimed).toMatchObject({ code: ClaimCode.STALE_STEP, reason: 'terminated' });
    const run = await s.runRead('t1', 'r1');
    expect(run?.modules['shop']?.state).toBe('terminated');
    expect(run?.modules['shop']?.nodes).toMatchObject({ done: 2 });
    expect(run?.modules['shop']?.items).toBe(1);
    // the item still waits in the outbox: the run is not finished before it is published
    expect(run?.state).toBe('running');
  });
}
