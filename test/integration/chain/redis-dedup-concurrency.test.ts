/**
 * De-duplication keys under real concurrency on Redis: two workers, each with its own
 * connection, commit different parents at the same moment, and both route inputs with the same
 * keys (the same links found on two pages). Each key makes exactly one node, whichever worker
 * wins; the other commit reports the input as a duplicate, and no node is queued twice.
 */
import { afterEach, expect, it } from 'vitest';
import {
  ClaimCode,
  CommitCode,
  RedisChainState,
  type CommitSuccessResult,
  type NodeAddress,
} from '../../../src/chain/state/index.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

const ROUNDS = 40;
const KEYS = 12;

const node = (stepIdx: number, prefixRequest: string): NodeAddress => ({
  taskId: 'dedup',
  runId: 'run',
  account: 'acc',
  platform: 'web',
  moduleId: 'crawl',
  stepIdx,
  prefixRequest,
});

describeRedis('de-duplication keys across workers', () => {
  const redis = useRedis();
  const backends: RedisBackend[] = [];

  afterEach(async () => {
    await Promise.all(backends.splice(0).map((b) => b.close()));
  });

  it('two workers routing the same keys at once create one node per key', async () => {
    const workers = await Promise.all(
      ['w0', 'w1'].map(async (owner) => {
        const backend = new RedisBackend({ redis: redis.url, keyPrefix: redis.prefix });
        await backend.connect();
        backends.push(backend);
        return { owner, state: new RedisChainState(backend) };
      }),
    );
    // the module's first node, committed once, creates one parent per worker and round
    const [first] = workers;
    const root = node(0, '');
    const claim = await first!.state.claim({
      node: root,
      owner: 'w0',
      leaseMs: 60_000,
      epoch: 0,
      root: true,
    });
    const parents = workers.flatMap((w, wi) =>
      Array.from({ length: ROUNDS }, (_, r) => node(0, `GET /page/${wi}/${r}#r0`)),
    );
    expect(
      await first!.state.commitSuccess({
        node: root,
        owner: 'w0',
        version: claim.version,
        successors: parents.map((p) => ({ node: p, message: `ptm:${p.prefixRequest}` })),
        items: [],
      }),
    ).toBe(CommitCode.COMMIT_OK);

    let created = 0;
    let duplicates = 0;
    for (let r = 0; r < ROUNDS; r++) {
      // both workers claim their parent of this round, then commit at the same moment
      const results: CommitSuccessResult[] = await Promise.all(
        workers.map(async (w, wi) => {
          const parent = node(0, `GET /page/${wi}/${r}#r0`);
          const c = await w.state.claim({
            node: parent,
            owner: w.owner,
            leaseMs: 60_000,
            epoch: 0,
            root: false,
          });
          expect(c.code).toBe(ClaimCode.EXECUTE);
          return w.state.commitSuccessDetailed({
            node: parent,
            owner: w.owner,
            version: c.version,
            // the same links, found on both pages: same keys, different child nodes
            successors: Array.from({ length: KEYS }, (_, k) => {
              const child = node(1, `GET /page/${wi}/${r}#r${k}`);
              return { node: child, message: `ptm:${wi}:${r}:${k}`, key: `/item/${r}/${k}` };
            }),
            items: [],
          });
        }),
      );
      for (const res of results) expect(res.code).toBe(CommitCode.COMMIT_OK);
      // each key went through exactly once: in one commit or the other
      const through = new Map<number, number>();
      results.forEach((res) => {
        for (let k = 0; k < KEYS; k++)
          if (!res.duplicates.includes(k)) through.set(k, (through.get(k) ?? 0) + 1);
      });
      expect([...through.values()]).toEqual(Array.from({ length: KEYS }, () => 1));
      created += results.reduce((n, res) => n + res.created, 0);
      duplicates += results.reduce((n, res) => n + res.duplicates.length, 0);
    }
    expect(created).toBe(ROUNDS * KEYS);
    expect(duplicates).toBe(ROUNDS * KEYS);
    // the outbox holds the parents, then exactly one message per key
    const entries = await workers[0]!.state.takeOutbox('dedup', 100_000, 60_000);
    const children = entries.filter((e) => /^ptm:\d:/.test(e));
    expect(children).toHaveLength(ROUNDS * KEYS);
    const perKey = new Set(children.map((e) => e.split(':').slice(2).join(':')));
    expect(perKey.size).toBe(ROUNDS * KEYS);
  });
});
