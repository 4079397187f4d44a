import { afterAll, expect, it, vi } from 'vitest';
import { DurableChainState } from '../../../src/chain/durable-chain-state.js';
import { ClaimCode, CommitCode, type NodeAddress } from '../../../src/chain/state/index.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { DurableBackend } from '../../../src/store/durable/durable-backend.js';
import { runChainStateConformance } from '../../conformance/chain-state.js';
import { openTempDurable, removeTempDataDirs, tempDataDir } from '../../helpers/durable.js';

afterAll(removeTempDataDirs);
// every transition is an LMDB write transaction: the 9,000-node case takes seconds on a busy host
vi.setConfig({ testTimeout: 60_000 });

runChainStateConformance('DurableChainState', async () => {
  const clock = new ManualClock(1_000_000);
  const backend = await openTempDurable({ clock, keyPrefix: 'x:' });
  return {
    state: new DurableChainState(backend),
    clock,
    raw: backend,
    cleanup: () => backend.close(),
  };
});

const root: NodeAddress = {
  taskId: 't1',
  runId: 'r1',
  account: 'acc',
  platform: 'web',
  moduleId: 'shop',
  stepIdx: 0,
  prefixRequest: '',
};

it('a committed node stays committed, and its outbox stays queued, across a reopen', async () => {
  const path = tempDataDir();
  const clock = new ManualClock(1_000);
  let backend = await DurableBackend.open({ path, clock, sweepIntervalMs: 0 });
  let state = new DurableChainState(backend);
  const claim = await state.claim({ node: root, owner: 'w1', leaseMs: 500, epoch: 0, root: true });
  expect(claim.code).toBe(ClaimCode.EXECUTE);
  const child: NodeAddress = { ...root, stepIdx: 1, prefixRequest: 'GET /a' };
  expect(
    await state.commitSuccess({
      node: root,
      owner: 'w1',
      version: claim.version,
      successors: [{ node: child, message: 'child-message' }],
      items: ['item-1'],
    }),
  ).toBe(CommitCode.COMMIT_OK);
  await backend.close();

  backend = await DurableBackend.open({ path, clock, sweepIntervalMs: 0 });
  state = new DurableChainState(backend);
  const again = await state.claim({ node: root, owner: 'w2', leaseMs: 500, epoch: 0, root: true });
  expect(again.code).toBe(ClaimCode.DUPLICATE_DONE);
  expect(await state.takeOutbox('t1', 10, 1_000)).toEqual(['child-message', 'item-1']);
  await backend.close();
});

it('a transition that throws leaves nothing behind', async () => {
  const backend = await openTempDurable();
  const state = new DurableChainState(backend);
  const c = await state.claim({ node: root, owner: 'w1', leaseMs: 500, epoch: 0, root: true });
  // a string where the outbox's sorted set goes: the commit fails
  backend.store.set(new ChainKeyBuilder().outbox('t1'), 'not a set');
  const keys = backend.store.keys('');
  expect(keys).toHaveLength(2);
  await expect(
    state.commitSuccess({
      node: root,
      owner: 'w1',
      version: c.version,
      successors: [],
      items: ['item-1'],
    }),
  ).rejects.toThrow(/wrong kind/);
  expect(backend.store.keys('').sort()).toEqual(keys.sort());
  await backend.close();
});
