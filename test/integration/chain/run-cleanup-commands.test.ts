/**
 * What one step of a finished run's clean-up (`chain_run_expire`) costs on Redis: its index
 * entries leave in one `ZREM`, each key gets the finished-run TTL with one `PEXPIRE … LT` (no
 * `PTTL` first on Redis 7), and it names only the keys the run wrote (a fallback gate has its own
 * index entry; no guessed gate keys). The TTLs it leaves: shortened, never lengthened.
 */
import { expect, it } from 'vitest';
import {
  ClaimCode,
  CommitCode,
  FallbackCode,
  RedisChainState,
} from '../../../src/chain/state/index.js';
import type { NodeAddress } from '../../../src/chain/state/index.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { scriptCommands } from '../../helpers/monitor.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

const node = (stepIdx: number, prefixRequest = ''): NodeAddress => ({
  taskId: 't',
  runId: 'r',
  account: 'a',
  platform: 'p',
  moduleId: 'm',
  stepIdx,
  prefixRequest,
});
const FINISHED_TTL = 60_000;

describeRedis('run clean-up commands', () => {
  const redis = useRedis();

  it('one ZREM for the entries, one PEXPIRE … LT per key, no PTTL, no guessed gate; TTLs only shortened', async () => {
    const client = redis.client();
    const backend = new RedisBackend({ redis: client, keyPrefix: redis.prefix.slice(0, -1) });
    const keys = new ChainKeyBuilder();
    const state = new RedisChainState(backend, { keys, finishedRunTtlMs: FINISHED_TTL });
    const full = (key: string): string => backend.keyPrefix + key;
    await state.runStart('t', 'r', ['m']);
    await state.runDispatch('t', 'r', [{ moduleId: 'm', state: 'running' }]);
    const children = ['a', 'b', 'c'].map((p) => node(1, p));
    const run = async (n: NodeAddress, successors: NodeAddress[]) => {
      const c = await state.claim({
        node: n,
        owner: 'o',
        leaseMs: 10_000,
        epoch: 0,
        root: n.stepIdx === 0,
      });
      expect(c.code).toBe(ClaimCode.EXECUTE);
      const commit = await state.commitSuccess({
        node: n,
        owner: 'o',
        version: c.version,
        successors: successors.map((s) => ({ node: s, message: `p${s.prefixRequest}` })),
        items: [],
      });
      expect(commit).toBe(CommitCode.COMMIT_OK);
    };
    await run(node(0), children);
    expect(await state.tryAllowFallbackOnce(children[0]!)).toBe(FallbackCode.ALLOWED);
    for (const child of children) await run(child, []);
    expect((await state.runRead('t', 'r'))?.state).toBe('done');
    // a key with a TTL shorter than the finished run's keeps it
    await client.pexpire(full(keys.ptm('t', children[2]!)), 5_000);

    const version = /redis_version:(\d+)/.exec(await client.info('server'))?.[1];
    const cmds = await scriptCommands(redis, full(keys.ptm('t', children[0]!)), () =>
      state.runCleanup('t', 'r', 100),
    );
    const named = (name: string) => cmds.filter((c) => c[0]!.toLowerCase() === name);
    const index = full(keys.runKeys('t', 'r'));
    expect(named('zrem').filter((c) => c[1] === index)).toHaveLength(1);
    expect(cmds.some((c) => c.some((a) => a.includes('gate:advance')))).toBe(false);
    if (Number(version) >= 7) {
      expect(named('pttl')).toEqual([]);
      expect(named('pexpire').every((c) => c[3]?.toUpperCase() === 'LT')).toBe(true);
    }
    // the run's keys: shortened to the finished TTL (the fallback gate too), never lengthened
    for (const key of [
      keys.ptm('t', node(0)),
      keys.ptm('t', children[0]!),
      keys.fallbackGate('t', children[0]!),
    ]) {
      const ttl = await client.pttl(full(key));
      expect(ttl, key).toBeGreaterThan(0);
      expect(ttl, key).toBeLessThanOrEqual(FINISHED_TTL);
    }
    expect(await client.pttl(full(keys.ptm('t', children[2]!)))).toBeLessThanOrEqual(5_000);
    expect(await client.exists(index)).toBe(0);
  });
});
