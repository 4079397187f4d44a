/**
 * The claim reads a run's terminate marks only when its record says one may exist (`x`): every
 * script that writes a mark sets it (`etm_terminate_mark`, `etm_threshold_decide`, and
 * `chain_run_start` for a mark written before the run), so a claim of an unterminated run runs
 * no `EXISTS`, and a terminated module's nodes still meet `STALE_STEP` (`terminated`).
 */
import { expect, it } from 'vitest';
import { ClaimCode, RedisChainState, type NodeAddress } from '../../../src/chain/state/index.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { scriptCommands } from '../../helpers/monitor.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

const root = (runId: string, moduleId: string): NodeAddress => ({
  taskId: 't',
  runId,
  account: 'a',
  platform: 'p',
  moduleId,
  stepIdx: 0,
  prefixRequest: '',
});

describeRedis('claim and terminate marks', () => {
  const redis = useRedis();

  async function setUp() {
    const backend = new RedisBackend({
      redis: redis.client(),
      keyPrefix: redis.prefix.slice(0, -1),
    });
    const keys = new ChainKeyBuilder();
    const state = new RedisChainState(backend, { keys });
    const start = async (runId: string, modules: string[]) => {
      await state.runStart('t', runId, modules);
      await state.runDispatch(
        't',
        runId,
        modules.map((moduleId) => ({ moduleId, state: 'running' })),
      );
    };
    const claim = (node: NodeAddress) =>
      state.claim({ node, owner: 'o', leaseMs: 10_000, epoch: 0, root: true });
    return { state, keys, backend, start, claim };
  }

  it('a claim of a run with no terminate mark reads no mark', async () => {
    const { keys, backend, start, claim } = await setUp();
    await start('r', ['m']);
    const node = root('r', 'm');
    const cmds = await scriptCommands(redis, backend.keyPrefix + keys.ptm('t', node), async () =>
      expect((await claim(node)).code).toBe(ClaimCode.EXECUTE),
    );
    expect(cmds.map((c) => c[0]!.toLowerCase())).not.toContain('exists');
  });

  it('a mark written by terminateMark, by a threshold decision, or before the run started stops its claims', async () => {
    const { state, start, claim } = await setUp();
    // terminateMark after the start
    await start('r1', ['m', 'n']);
    await state.terminateMark('t', 'r1', 'n', 'by hand');
    expect(await claim(root('r1', 'n'))).toMatchObject({
      code: ClaimCode.STALE_STEP,
      reason: 'terminated',
    });
    expect((await claim(root('r1', 'm'))).code).toBe(ClaimCode.EXECUTE);
    // the task's mark
    await start('r2', ['m']);
    await state.terminateMark('t', 'r2', undefined, 'by hand');
    expect(await claim(root('r2', 'm'))).toMatchObject({
      code: ClaimCode.STALE_STEP,
      reason: 'terminated',
    });
    // a threshold decision
    await start('r3', ['m', 'n']);
    await state.thresholdDecide({
      taskId: 't',
      runId: 'r3',
      moduleId: 'n',
      moduleThreshold: 1,
      taskThreshold: 10,
      retryAfterMs: 0,
    });
    expect(await claim(root('r3', 'n'))).toMatchObject({
      code: ClaimCode.STALE_STEP,
      reason: 'terminated',
    });
    expect((await claim(root('r3', 'm'))).code).toBe(ClaimCode.EXECUTE);
    // a mark written before the run's record
    await state.terminateMark('t', 'r4', 'm', 'before the start');
    await start('r4', ['m']);
    expect(await claim(root('r4', 'm'))).toMatchObject({
      code: ClaimCode.STALE_STEP,
      reason: 'terminated',
    });
  });
});

describeRedis(
  'claim and terminate marks: concurrent runs, and a run created by its dispatch',
  () => {
    const redis = useRedis();

    function setUp() {
      const backend = new RedisBackend({
        redis: redis.client(),
        keyPrefix: redis.prefix.slice(0, -1),
      });
      const state = new RedisChainState(backend, { keys: new ChainKeyBuilder() });
      const dispatch = (runId: string, modules: string[]) =>
        state.runDispatch(
          't',
          runId,
          modules.map((moduleId) => ({ moduleId, state: 'running' })),
        );
      const start = async (runId: string, modules: string[]) => {
        await state.runStart('t', runId, modules);
        await dispatch(runId, modules);
      };
      const claim = (node: NodeAddress) =>
        state.claim({ node, owner: 'o', leaseMs: 10_000, epoch: 0, root: true });
      return { state, start, dispatch, claim };
    }

    const terminated = { code: ClaimCode.STALE_STEP, reason: 'terminated' };

    // terminate marks are per run (`terminate:task:<runId>`, pinned by the conformance suite): a
    // mark written through one run stops that run's claims, not those of another run in flight
    it('a mark written through one of two runs in flight stops its claims only', async () => {
      const { state, start, claim } = setUp();
      await start('r1', ['m', 'n']);
      await start('r2', ['m', 'n']);
      await state.terminateMark('t', 'r1', 'n', 'by hand');
      await state.thresholdDecide({
        taskId: 't',
        runId: 'r1',
        moduleId: 'm',
        moduleThreshold: 1,
        taskThreshold: 10,
        retryAfterMs: 0,
      });
      expect(await claim(root('r1', 'n'))).toMatchObject(terminated);
      expect(await claim(root('r1', 'm'))).toMatchObject(terminated);
      expect((await claim(root('r2', 'n'))).code).toBe(ClaimCode.EXECUTE);
      await state.terminateMark('t', 'r1', undefined, 'the task, by hand');
      expect((await claim(root('r2', 'm'))).code).toBe(ClaimCode.EXECUTE);
      expect(await claim({ ...root('r1', 'm'), prefixRequest: 'z' })).toMatchObject(terminated);
    });

    it('a mark written before the run has a record stops its claims when the dispatch creates the record', async () => {
      const { state, dispatch, claim } = setUp();
      await state.terminateMark('t', 'r1', 'm', 'before the dispatch');
      await dispatch('r1', ['m', 'n']);
      expect(await claim(root('r1', 'm'))).toMatchObject(terminated);
      expect((await claim(root('r1', 'n'))).code).toBe(ClaimCode.EXECUTE);
      await state.terminateMark('t', 'r2', undefined, 'before the dispatch');
      await dispatch('r2', ['m']);
      expect(await claim(root('r2', 'm'))).toMatchObject(terminated);
    });

    it('a module mark written before the run started stops its claims when the dispatch adds the module', async () => {
      const { state, dispatch, claim } = setUp();
      await state.terminateMark('t', 'r1', 'n', 'before the start');
      await state.runStart('t', 'r1', ['m']);
      await dispatch('r1', ['m', 'n']);
      expect(await claim(root('r1', 'n'))).toMatchObject(terminated);
      expect((await claim(root('r1', 'm'))).code).toBe(ClaimCode.EXECUTE);
    });
  },
);
