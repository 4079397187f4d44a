/**
 * A commit that claims the next node: in its own run (the script reuses the commit's run keys)
 * and in another run (the claim's run keys are passed), with the same results and run records
 * on Redis as on the local store.
 */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import {
  ClaimCode,
  CommitCode,
  LocalChainState,
  RedisChainState,
  type ChainStateStore,
  type NodeAddress,
} from '../../../src/chain/state/index.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { LocalBackend } from '../../../src/store/local-backend.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { describeRedis, redisUrl } from '../../helpers/redis.js';

const node = (runId: string, stepIdx: number, prefixRequest = ''): NodeAddress => ({
  taskId: 't',
  runId,
  account: 'a',
  platform: 'p',
  moduleId: 'm',
  stepIdx,
  prefixRequest,
});

async function scenario(state: ChainStateStore) {
  for (const run of ['r1', 'r2']) {
    await state.runStart('t', run, ['m']);
    await state.runDispatch('t', run, [{ moduleId: 'm', state: 'running' }]);
  }
  const lease = { owner: 'o', leaseMs: 10_000, epoch: 0 };
  const root = await state.claim({ node: node('r1', 0), ...lease, root: true });
  // the root's commit creates two leaves and claims the first (same run)
  const first = await state.commitSuccessDetailed({
    node: node('r1', 0),
    owner: 'o',
    version: root.version,
    successors: ['a', 'b'].map((p) => ({ node: node('r1', 1, p), message: `p${p}` })),
    items: [],
    claim: { node: node('r1', 1, 'a'), ...lease, root: false },
  });
  // the leaf's commit claims the root of the other run (its own run keys)
  const second = await state.commitSuccessDetailed({
    node: node('r1', 1, 'a'),
    owner: 'o',
    version: first.claimed?.version ?? 0,
    successors: [],
    items: ['ix'],
    claim: { node: node('r2', 0), ...lease, root: true },
  });
  const runs = [await state.runRead('t', 'r1'), await state.runRead('t', 'r2')];
  const strip = (r: Awaited<ReturnType<ChainStateStore['runRead']>>) =>
    r && { ...r, startedAt: 0, updatedAt: 0 };
  const claimed = (c: typeof first.claimed) => c && { ...c, leaseUntil: 0 };
  return {
    first: { ...first, claimed: claimed(first.claimed) },
    second: { ...second, claimed: claimed(second.claimed) },
    runs: runs.map(strip),
  };
}

describeRedis('a commit claims the next node in its run or in another', () => {
  it('same results and run records on Redis as on the local store', async () => {
    const clock = new ManualClock(1_000_000);
    const keys = new ChainKeyBuilder();
    const local = new LocalChainState(new LocalBackend({ clock, sweepIntervalMs: 0 }), { keys });
    const backend = new RedisBackend({
      redis: redisUrl()!,
      keyPrefix: `ccr-${randomBytes(5).toString('hex')}:`,
    });
    await backend.connect();
    try {
      const redis = new RedisChainState(backend, { keys });
      const expected = await scenario(local);
      expect(expected.first.code).toBe(CommitCode.COMMIT_OK);
      expect(expected.first.claimed?.code).toBe(ClaimCode.EXECUTE);
      expect(expected.second.claimed?.code).toBe(ClaimCode.EXECUTE);
      expect(await scenario(redis)).toEqual(expected);
    } finally {
      await backend.close();
    }
  });
});
