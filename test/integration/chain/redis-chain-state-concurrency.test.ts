/**
 * RedisChainState under real concurrency (DESIGN §3.2 guarantees 1 and 3): 32 workers, each with
 * its own connection, race on the same nodes of a real Redis. Exactly one EXECUTE per node per
 * lease, exactly one COMMIT_OK per node; after leases expire and zombies are recovered, the stale
 * owner's late commit is refused. Also: SCRIPT FLUSH between transitions is transparent.
 */
import { afterEach, expect, it } from 'vitest';
import {
  ClaimCode,
  CommitCode,
  CommitErrorCode,
  RecoverCode,
  RedisChainState,
  type ClaimResult,
  type NodeAddress,
} from '../../../src/chain/state/index.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { LUA_SCRIPTS } from '../../../src/store/lua-scripts.generated.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { describeRedis, useRedis } from '../../helpers/redis.js';

const WORKERS = 32;
const ROUNDS = 8;
const ROOTS = 6; // per round; each root fans out into 2 children
const LONG_LEASE = 60_000;

interface Worker {
  owner: string;
  backend: RedisBackend;
  state: RedisChainState;
}

const node = (taskId: string, moduleId: string, stepIdx = 0, prefixRequest = ''): NodeAddress => ({
  taskId,
  runId: 'run',
  account: 'acc',
  platform: 'web',
  moduleId,
  stepIdx,
  prefixRequest,
});
const idOf = (n: NodeAddress): string => `${n.moduleId}/${n.stepIdx}/${n.prefixRequest}`;
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const shuffled = <T>(xs: readonly T[]): T[] => {
  const out = xs.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
};

/** Per-node tallies of what the workers were told. */
class Tally {
  readonly #counts = new Map<string, Map<string, number>>();
  add(n: NodeAddress, what: string): void {
    const m = this.#counts.get(idOf(n)) ?? new Map<string, number>();
    this.#counts.set(idOf(n), m);
    m.set(what, (m.get(what) ?? 0) + 1);
  }
  count(n: NodeAddress, what: string): number {
    return this.#counts.get(idOf(n))?.get(what) ?? 0;
  }
}

describeRedis('RedisChainState under concurrency', () => {
  const redis = useRedis();
  let workers: Worker[] = [];

  async function startWorkers(n: number): Promise<Worker[]> {
    const started = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const backend = new RedisBackend({ redis: redis.url, keyPrefix: redis.prefix });
        await backend.connect();
        return { owner: `w${i}`, backend, state: new RedisChainState(backend) };
      }),
    );
    workers.push(...started);
    return started;
  }

  afterEach(async () => {
    await Promise.all(workers.map((w) => w.backend.close()));
    workers = [];
  });

  /**
   * Every worker claims every node (in its own random order) at the same time. The winner works
   * a little, commits, then replays its commit (a duplicate delivery); losers try to commit with
   * the version they were shown (a confused worker) and must be refused.
   */
  async function race(
    ws: Worker[],
    nodes: NodeAddress[],
    root: boolean,
    successorsOf: (n: NodeAddress) => NodeAddress[],
    tally: Tally,
    executed: Map<string, { owner: string; version: number }>,
  ): Promise<void> {
    await Promise.all(
      ws.map(async (w) => {
        for (const n of shuffled(nodes)) {
          const c = await w.state.claim({
            node: n,
            owner: w.owner,
            leaseMs: LONG_LEASE,
            epoch: 0,
            root,
          });
          tally.add(n, `claim:${c.code}`);
          const input = {
            node: n,
            owner: w.owner,
            version: c.version,
            successors: successorsOf(n).map((s) => ({ node: s, message: `ptm:${idOf(s)}` })),
            items: [`item:${idOf(n)}`],
          };
          if (c.code === ClaimCode.EXECUTE) {
            executed.set(idOf(n), { owner: w.owner, version: c.version });
            await pause(Math.random() * 3);
            tally.add(n, `commit:${await w.state.commitSuccess(input)}`);
            tally.add(n, `replay:${await w.state.commitSuccess(input)}`);
          } else {
            tally.add(n, `foreign:${await w.state.commitSuccess(input)}`);
          }
        }
      }),
    );
  }

  it(`${WORKERS} workers racing for ${ROUNDS} rounds: exactly one EXECUTE and one COMMIT_OK per node, each successor queued once`, async () => {
    const ws = await startWorkers(WORKERS);
    for (let round = 0; round < ROUNDS; round++) {
      const taskId = `task-${round}`;
      const roots = Array.from({ length: ROOTS }, (_, i) => node(taskId, `m${i}`));
      const childrenOf = (n: NodeAddress): NodeAddress[] =>
        n.stepIdx === 0 ? ['GET /a', 'GET /b'].map((p) => node(taskId, n.moduleId, 1, p)) : [];
      const children = roots.flatMap(childrenOf);
      const tally = new Tally();
      const executed = new Map<string, { owner: string; version: number }>();

      // a child claimed before its parent commits is out of order, never executed
      const early = await ws[0]!.state.claim({
        node: children[0]!,
        owner: 'early',
        leaseMs: LONG_LEASE,
        epoch: 0,
        root: false,
      });
      expect(early.code).toBe(ClaimCode.OUT_OF_ORDER);

      await race(ws, roots, true, childrenOf, tally, executed);
      await race(ws, children, false, childrenOf, tally, executed);

      for (const n of [...roots, ...children]) {
        const at = `round ${round}, node ${idOf(n)}`;
        expect(tally.count(n, `claim:${ClaimCode.EXECUTE}`), `${at}: EXECUTE`).toBe(1);
        expect(tally.count(n, `commit:${CommitCode.COMMIT_OK}`), `${at}: COMMIT_OK`).toBe(1);
        expect(tally.count(n, `replay:${CommitCode.ALREADY_COMMITTED}`), `${at}: replay`).toBe(1);
        // every other worker was refused, whatever it was told and whatever it tried
        expect(
          tally.count(n, `claim:${ClaimCode.LOCKED_BY_OTHER}`) +
            tally.count(n, `claim:${ClaimCode.DUPLICATE_DONE}`),
          `${at}: losers`,
        ).toBe(WORKERS - 1);
        expect(
          tally.count(n, `foreign:${CommitCode.FENCING_REJECT}`),
          `${at}: foreign commits refused`,
        ).toBe(WORKERS - 1);
        expect(executed.get(idOf(n))?.version, `${at}: version`).toBe(1);
      }

      // the outbox holds every child once and every node's item once
      const outbox = await ws[1]!.state.takeOutbox(taskId, 10_000, LONG_LEASE);
      expect(outbox.slice().sort()).toEqual(
        [
          ...children.map((c) => `ptm:${idOf(c)}`),
          ...[...roots, ...children].map((n) => `item:${idOf(n)}`),
        ].sort(),
      );
      // leased to ws[1]: nobody else gets them; acknowledged: gone for good
      expect(await ws[2]!.state.takeOutbox(taskId, 10_000, LONG_LEASE)).toEqual([]);
      expect(await ws[1]!.state.ackOutbox(taskId, outbox)).toBe(outbox.length);
      expect(await ws[2]!.state.ackOutbox(taskId, outbox)).toBe(0);
    }
  }, 60_000);

  it('leases expire: zombies are recovered once and reclaimed once; the stale owner never commits', async () => {
    const ws = await startWorkers(WORKERS);
    const taskId = 'task-zombie';
    const nodes = Array.from({ length: 16 }, (_, i) => node(taskId, `z${i}`));
    const recoverVariant = (i: number): boolean => i % 2 === 0; // odd ones are taken over without recovery
    const lease = 1_500;

    // 1. every worker races for every node with a short lease: one EXECUTE each
    const claims = new Map<string, { owner: string; claim: ClaimResult }>();
    await Promise.all(
      ws.map(async (w) => {
        for (const n of shuffled(nodes)) {
          const c = await w.state.claim({
            node: n,
            owner: w.owner,
            leaseMs: lease,
            epoch: 0,
            root: true,
          });
          if (c.code === ClaimCode.EXECUTE) {
            expect(claims.has(idOf(n)), `${idOf(n)} executed twice within one lease`).toBe(false);
            claims.set(idOf(n), { owner: w.owner, claim: c });
          } else {
            expect(c.code).toBe(ClaimCode.LOCKED_BY_OTHER);
          }
        }
      }),
    );
    expect(claims.size).toBe(nodes.length);

    // 2. wait, by the server's clock, until every lease has expired
    const lastLease = Math.max(...[...claims.values()].map((c) => c.claim.leaseUntil));
    const admin = redis.client();
    for (;;) {
      const [s, us] = await admin.time();
      if (Number(s) * 1000 + Math.floor(Number(us) / 1000) > lastLease) break;
      await pause(50);
    }

    // 3. every worker tries to recover the "recover" nodes at once: one RECOVERED each
    const recovered = new Tally();
    await Promise.all(
      ws.map(async (w) => {
        for (const [i, n] of shuffled([...nodes.entries()])) {
          if (!recoverVariant(i)) continue;
          recovered.add(n, String(await w.state.recoverZombie(n)));
        }
      }),
    );
    for (const [i, n] of nodes.entries()) {
      if (!recoverVariant(i)) continue;
      expect(recovered.count(n, String(RecoverCode.RECOVERED)), idOf(n)).toBe(1);
      expect(recovered.count(n, String(RecoverCode.NOT_PROCESSING)), idOf(n)).toBe(WORKERS - 1);
    }

    // 4. the others reclaim; on recovered nodes the stale owner commits at the same time
    const staleResults = new Map<string, number>();
    const winners = new Map<string, { owner: string; version: number }>();
    const stale = (n: NodeAddress) => claims.get(idOf(n))!;
    const staleCommit = (n: NodeAddress) =>
      ws
        .find((w) => w.owner === stale(n).owner)!
        .state.commitSuccess({
          node: n,
          owner: stale(n).owner,
          version: stale(n).claim.version,
          successors: [{ node: node(taskId, n.moduleId, 1, 'GET /late'), message: 'late' }],
          items: ['late-item'],
        });
    await Promise.all([
      ...nodes.flatMap((n, i) =>
        recoverVariant(i) ? [staleCommit(n).then((code) => staleResults.set(idOf(n), code))] : [],
      ),
      ...ws.map(async (w) => {
        for (const n of shuffled(nodes)) {
          if (w.owner === stale(n).owner) continue;
          const c = await w.state.claim({
            node: n,
            owner: w.owner,
            leaseMs: LONG_LEASE,
            epoch: 0,
            root: true,
          });
          if (c.code === ClaimCode.EXECUTE) {
            expect(winners.has(idOf(n)), `${idOf(n)} reclaimed twice`).toBe(false);
            winners.set(idOf(n), { owner: w.owner, version: c.version });
          } else {
            expect(c.code).toBe(ClaimCode.LOCKED_BY_OTHER);
          }
        }
      }),
    ]);
    expect(winners.size).toBe(nodes.length);

    // 5. on taken-over nodes the stale owner commits (and reports an error) after the takeover
    for (const [i, n] of nodes.entries()) {
      if (recoverVariant(i)) continue;
      staleResults.set(idOf(n), await staleCommit(n));
      const s = stale(n);
      expect(
        await ws
          .find((w) => w.owner === s.owner)!
          .state.commitError({
            node: n,
            owner: s.owner,
            version: s.claim.version,
            errorHash: 'late',
          }),
      ).toBe(CommitErrorCode.FENCING_REJECT);
    }
    for (const [i, n] of nodes.entries()) {
      const code = staleResults.get(idOf(n));
      expect(
        [CommitCode.FENCING_REJECT, CommitCode.CAS_CONFLICT],
        `stale commit of ${idOf(n)}`,
      ).toContain(code);
      if (!recoverVariant(i)) expect(code).toBe(CommitCode.FENCING_REJECT);
      expect(winners.get(idOf(n))!.version).toBe(2);
    }

    // 6. the new owners commit once; nothing of the stale commits reached the outbox
    await Promise.all(
      nodes.map(async (n) => {
        const win = winners.get(idOf(n))!;
        const w = ws.find((x) => x.owner === win.owner)!;
        expect(
          await w.state.commitSuccess({
            node: n,
            ...win,
            successors: [],
            items: [`done:${idOf(n)}`],
          }),
        ).toBe(CommitCode.COMMIT_OK);
        const s = stale(n);
        expect(
          await ws
            .find((x) => x.owner === s.owner)!
            .state.commitSuccess({
              node: n,
              owner: s.owner,
              version: s.claim.version,
              successors: [],
              items: ['late-item'],
            }),
        ).toBe(CommitCode.FENCING_REJECT);
      }),
    );
    const outbox = await ws[0]!.state.takeOutbox(taskId, 10_000, LONG_LEASE);
    expect(outbox.slice().sort()).toEqual(nodes.map((n) => `done:${idOf(n)}`).sort());
    expect(await ws[0]!.state.ackOutbox(taskId, outbox)).toBe(nodes.length);
  }, 60_000);

  it('outbox relays and retry promoters race: each due retry is promoted once, each entry is leased to one relay at a time, and what a dead relay left is handed out again', async () => {
    const ws = await startWorkers(WORKERS);
    const taskId = 'task-relay';
    const RETRIES = 24;
    const ITEMS = 40;
    const lease = 2_000;
    // failed nodes with a retry due now, and a commit that queues items
    const w0 = ws[0]!;
    for (let i = 0; i < RETRIES; i++) {
      const n = node(taskId, `r${i}`);
      const c = await w0.state.claim({
        node: n,
        owner: w0.owner,
        leaseMs: LONG_LEASE,
        epoch: 0,
        root: true,
      });
      expect(
        await w0.state.commitError({
          node: n,
          owner: w0.owner,
          version: c.version,
          errorHash: 'h',
        }),
      ).toBe(CommitErrorCode.ERROR_EMIT_OK);
      expect(
        await w0.state.retrySchedule({
          node: n,
          attempt: 1,
          maxRetries: 3,
          delayMs: 0,
          message: `retry:${i}`,
          allowed: true,
        }),
      ).toBe(0);
    }
    const items = Array.from({ length: ITEMS }, (_, i) => `item:${i}`);
    const src = node(taskId, 'src');
    const c = await w0.state.claim({
      node: src,
      owner: w0.owner,
      leaseMs: LONG_LEASE,
      epoch: 0,
      root: true,
    });
    expect(
      await w0.state.commitSuccess({
        node: src,
        owner: w0.owner,
        version: c.version,
        successors: [],
        items,
      }),
    ).toBe(CommitCode.COMMIT_OK);

    // 1. every worker promotes at once, 2 at a time, until nothing is due: each retry once
    const promoted: string[] = [];
    await Promise.all(
      ws.map(async (w) => {
        for (;;) {
          const got = await w.state.promoteDueRetries(taskId, 2);
          if (got.length === 0) return;
          promoted.push(...got);
        }
      }),
    );
    const retries = Array.from({ length: RETRIES }, (_, i) => `retry:${i}`);
    expect(promoted.slice().sort()).toEqual(retries.slice().sort());

    // 2. every worker relays at once, 3 at a time; a quarter of them die before acknowledging
    const dead = (w: Worker): boolean => Number(w.owner.slice(1)) % 4 === 0;
    const handed = new Map<string, number>();
    const left: string[] = [];
    await Promise.all(
      ws.map(async (w) => {
        for (;;) {
          const got = await w.state.takeOutbox(taskId, 3, lease);
          if (got.length === 0) return;
          for (const e of got) handed.set(e, (handed.get(e) ?? 0) + 1);
          if (dead(w)) {
            left.push(...got);
            return;
          }
          expect(await w.state.ackOutbox(taskId, got)).toBe(got.length);
        }
      }),
    );
    const all = [...items, ...retries].sort();
    expect([...handed.keys()].sort()).toEqual(all);
    expect(
      [...handed.values()].every((n) => n === 1),
      'an entry leased to two relays at once',
    ).toBe(true);
    expect(left.length).toBeGreaterThan(0);

    // 3. after the lease, the dead relays' entries are handed out again, each once, then acked
    await pause(lease + 100);
    const again: string[] = [];
    await Promise.all(
      ws
        .filter((w) => !dead(w))
        .map(async (w) => {
          for (;;) {
            const got = await w.state.takeOutbox(taskId, 2, LONG_LEASE);
            if (got.length === 0) return;
            again.push(...got);
            expect(await w.state.ackOutbox(taskId, got)).toBe(got.length);
          }
        }),
    );
    expect(again.slice().sort()).toEqual(left.slice().sort());
    const keys = new ChainKeyBuilder();
    const admin = redis.client();
    expect(await admin.exists(redis.prefix + keys.outbox(taskId))).toBe(0);
    expect(await admin.exists(redis.prefix + keys.outboxLeases(taskId))).toBe(0);
    expect(await admin.exists(redis.prefix + keys.retryZset(taskId))).toBe(0);
  }, 60_000);

  it('SCRIPT FLUSH before every transition: each one reloads its script and returns the right code', async () => {
    const [w1, w2] = await startWorkers(2);
    const admin = redis.client();
    const flush = async (): Promise<void> => {
      expect(await admin.script('FLUSH')).toBe('OK');
      const [loaded] = (await admin.script('EXISTS', LUA_SCRIPTS.ptm_claim.sha1)) as number[];
      expect(loaded).toBe(0);
    };
    const root = node('task-noscript', 'm');
    const child = node('task-noscript', 'm', 1, 'GET /a');
    const keys = new ChainKeyBuilder();

    await flush();
    const c = await w1!.state.claim({
      node: root,
      owner: w1!.owner,
      leaseMs: LONG_LEASE,
      epoch: 0,
      root: true,
    });
    expect(c).toMatchObject({ code: ClaimCode.EXECUTE, version: 1 });
    expect((await admin.script('EXISTS', LUA_SCRIPTS.ptm_claim.sha1)) as number[]).toEqual([1]);
    await flush();
    expect(
      (
        await w2!.state.claim({
          node: root,
          owner: w2!.owner,
          leaseMs: LONG_LEASE,
          epoch: 0,
          root: true,
        })
      ).code,
    ).toBe(ClaimCode.LOCKED_BY_OTHER);
    await flush();
    const commit = {
      node: root,
      owner: w1!.owner,
      version: c.version,
      successors: [{ node: child, message: 'ptm:a' }],
      items: ['item'],
    };
    expect(await w1!.state.commitSuccess(commit)).toBe(CommitCode.COMMIT_OK);
    await flush();
    expect(await w1!.state.commitSuccess(commit)).toBe(CommitCode.ALREADY_COMMITTED);
    await flush();
    expect(
      (
        await w2!.state.claim({
          node: root,
          owner: w2!.owner,
          leaseMs: LONG_LEASE,
          epoch: 0,
          root: true,
        })
      ).code,
    ).toBe(ClaimCode.DUPLICATE_DONE);
    await flush();
    const cc = await w2!.state.claim({
      node: child,
      owner: w2!.owner,
      leaseMs: LONG_LEASE,
      epoch: 0,
      root: false,
    });
    expect(cc).toMatchObject({ code: ClaimCode.EXECUTE, version: 1 });
    await flush();
    expect(
      await w2!.state.commitError({
        node: child,
        owner: w2!.owner,
        version: cc.version,
        errorHash: 'h',
      }),
    ).toBe(CommitErrorCode.ERROR_EMIT_OK);
    await flush();
    expect(await w1!.state.takeOutbox('task-noscript', 10, LONG_LEASE)).toEqual(['ptm:a', 'item']);
    await flush();
    expect(await w1!.state.ackOutbox('task-noscript', ['ptm:a', 'item'])).toBe(2);
    // the script ran exactly once per call: one commit wrote the node done once, one outbox
    expect(await admin.hget(redis.prefix + keys.ptm(root.taskId, root), 'status')).toBe('done');
    expect(await admin.exists(redis.prefix + keys.outbox(root.taskId))).toBe(0);
    expect(await admin.exists(redis.prefix + keys.outboxLeases(root.taskId))).toBe(0);
  });
});
