/**
 * A finished run's clean-up takes the keys the run wrote since error counters, terminate marks
 * (per run) and de-duplication marks (per run) exist: none of them outlives `finishedRunTtlMs`.
 */
import { describe, expect, it } from 'vitest';
import { LocalChainState, type NodeAddress } from '../../../src/chain/state/index.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { LocalBackend } from '../../../src/store/local-backend.js';

const root: NodeAddress = {
  taskId: 't1',
  runId: 'r1',
  account: 'acc',
  platform: 'web',
  moduleId: 'shop',
  stepIdx: 0,
  prefixRequest: '',
};
const child: NodeAddress = { ...root, stepIdx: 1, prefixRequest: 'c' };
const FINISHED_TTL = 60_000;

describe('run clean-up', () => {
  it("expires the run's de-duplication marks, error counters and terminate marks", async () => {
    const clock = new ManualClock(1_000_000);
    const backend = new LocalBackend({ clock, sweepIntervalMs: 0 });
    const keys = new ChainKeyBuilder();
    const state = new LocalChainState(backend, { keys, finishedRunTtlMs: FINISHED_TTL });
    await state.runStart('t1', 'r1', ['shop']);
    await state.runDispatch('t1', 'r1', [{ moduleId: 'shop', state: 'running' }]);
    const claim = await state.claim({
      node: root,
      owner: 'w1',
      leaseMs: 1_000,
      epoch: 0,
      root: true,
    });
    const commit = await state.commitSuccessDetailed({
      node: root,
      owner: 'w1',
      version: claim.version,
      successors: [
        { node: child, message: 'p:c', key: 'k1' },
        { node: { ...child, prefixRequest: 'd' }, message: 'p:d', key: 'k1' },
      ],
      items: [],
    });
    expect(commit.duplicates).toEqual([1]);
    await state.thresholdDecide({
      taskId: 't1',
      runId: 'r1',
      moduleId: 'shop',
      moduleThreshold: 1,
      taskThreshold: 1,
      retryAfterMs: 0,
      failureId: 'f1',
    });
    expect((await state.runRead('t1', 'r1'))?.state).toBe('terminated');
    const marks = [
      keys.dedup('t1', 'r1', 'shop', 'k1'),
      keys.taskThreshold('t1', 'r1'),
      keys.moduleThreshold('t1', 'r1', 'shop'),
      keys.terminateTask('t1', 'r1'),
      keys.terminateModule('t1', 'r1', 'shop'),
    ];
    for (const key of marks) expect(backend.store.exists(key), key).toBe(true);
    await state.runCleanup('t1', 'r1', 100);
    clock.advance(FINISHED_TTL + 1);
    for (const key of marks) expect(backend.store.exists(key), key).toBe(false);
    backend.close();
  });
});
