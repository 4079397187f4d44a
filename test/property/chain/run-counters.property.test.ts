/**
 * Run counters (DESIGN §5 rule 4) under random sequences of transitions: claims by two owners
 * (replays and take-overs after a lease ran out included), commits, failures, retries, give-ups,
 * zombie recoveries, cancels, and the outbox taken and acknowledged — on LocalChainState and on
 * RedisChainState in lock-step. After every step both stores hold the same run record, and it
 * equals a ledger kept from the transitions' results alone: each node of the run is counted in
 * exactly one of queued / running / done / failed, failures and items as committed, and the run
 * is finished exactly when no module has a node queued or running and no item waits (or it was
 * cancelled).
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  ClaimCode,
  CommitCode,
  CommitErrorCode,
  LocalChainState,
  RedisChainState,
  RetryScheduleCode,
  type ChainStateStore,
  type NodeAddress,
  type RunSnapshot,
} from '../../../src/chain/state/index.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { LocalBackend } from '../../../src/store/local-backend.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { redisUrl } from '../../helpers/redis.js';

const TASK = 't1';
const RUN = 'r1';
const MODULES = ['m1', 'm2'] as const;
const OWNERS = ['w0', 'w1'] as const;
const LEASE = 1_000;
/** Each module's tree: root → a, b; a → ax; b → bx, ax (shared). */
const TREE: Record<string, { step: number; children: string[] }> = {
  root: { step: 0, children: ['a', 'b'] },
  a: { step: 1, children: ['ax'] },
  b: { step: 1, children: ['bx', 'ax'] },
  ax: { step: 2, children: [] },
  bx: { step: 2, children: [] },
};
const NAMES = Object.keys(TREE);

const addr = (moduleId: string, name: string): NodeAddress => ({
  taskId: TASK,
  runId: RUN,
  account: 'acc',
  platform: 'web',
  moduleId,
  stepIdx: TREE[name]!.step,
  prefixRequest: name === 'root' ? '' : name,
});

type Op =
  | { k: 'claim'; m: number; n: number; o: number }
  | { k: 'commit'; m: number; n: number; items: number }
  | { k: 'fail'; m: number; n: number }
  | { k: 'retry'; m: number; n: number }
  | { k: 'giveUp'; m: number; n: number }
  | { k: 'recover'; m: number; n: number }
  | { k: 'advance' }
  | { k: 'takeAck'; ack: boolean }
  | { k: 'cancel' };

const node = { m: fc.nat(MODULES.length - 1), n: fc.nat(NAMES.length - 1) };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('claim' as const), ...node, o: fc.nat(1) }) },
  {
    weight: 5,
    arbitrary: fc.record({ k: fc.constant('commit' as const), ...node, items: fc.nat(2) }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('fail' as const), ...node }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('retry' as const), ...node }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('giveUp' as const), ...node }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('recover' as const), ...node }) },
  { weight: 1, arbitrary: fc.constant({ k: 'advance' as const }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('takeAck' as const), ack: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ k: 'cancel' as const }) },
);

type NodeState = 'queued' | 'running' | 'done' | 'failed';

/** The run as the transitions' results say it is. */
class Ledger {
  readonly nodes = new Map<string, { state: NodeState; epoch: number; failedEpoch?: number }>();
  /** The owner and version of each node's last EXECUTE, for its commits. */
  readonly claims = new Map<string, { owner: string; version: number }>();
  errors: Record<string, number> = { m1: 0, m2: 0 };
  items: Record<string, number> = { m1: 0, m2: 0 };
  /** Item entries in the outbox or leased, not acknowledged. */
  readonly pendingItems = new Set<string>();
  state: RunSnapshot['state'] = 'running';
  settled = new Set<string>();

  key(m: string, n: string): string {
    return `${m}/${n}`;
  }

  counts(m: string): RunSnapshot['modules'][string]['nodes'] {
    const c = { queued: 0, running: 0, done: 0, failed: 0 };
    for (const [k, v] of this.nodes) if (k.startsWith(`${m}/`)) c[v.state]++;
    // a module's first node is queued from the dispatch until its claim creates it
    if (!this.nodes.has(this.key(m, 'root'))) c.queued++;
    return c;
  }

  /** Settles modules and the run the way the transitions must have. */
  settle(): void {
    for (const m of MODULES) {
      const c = this.counts(m);
      if (c.queued === 0 && c.running === 0) this.settled.add(m);
    }
    if (
      this.state === 'running' &&
      this.settled.size === MODULES.length &&
      this.pendingItems.size === 0
    )
      this.state = 'done';
  }
}

describe('run counters: LocalChainState and RedisChainState against a ledger', () => {
  it('same record on both stores after every step, equal to the ledger of results', async () => {
    const url = redisUrl();
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 90 }), async (ops) => {
        runs++;
        const clock = new ManualClock(1_000_000);
        const keys = new ChainKeyBuilder();
        const backend = new LocalBackend({ clock, sweepIntervalMs: 0 });
        const impls: [string, ChainStateStore][] = [
          ['local', new LocalChainState(backend, { keys, finishedRunTtlMs: 3_600_000 })],
        ];
        let redis: RedisBackend | undefined;
        if (url) {
          redis = new RedisBackend({
            redis: url,
            keyPrefix: `rc-${randomBytes(5).toString('hex')}:`,
          });
          await redis.connect();
          impls.push([
            'redis',
            new RedisChainState(redis, { keys, testClock: clock, finishedRunTtlMs: 3_600_000 }),
          ]);
        }
        const ledger = new Ledger();
        try {
          for (const [, s] of impls) {
            await s.runStart(TASK, RUN, MODULES);
            await s.runDispatch(
              TASK,
              RUN,
              MODULES.map((moduleId) => ({ moduleId, state: 'running' as const })),
            );
          }
          let step = 0;
          for (const op of ops) {
            if (op.k === 'advance') clock.advance(LEASE / 2 + 1);
            const results: unknown[] = [];
            for (const [, impl] of impls) results.push(await run(impl, op, ledger, clock));
            expect(
              results.every((r) => JSON.stringify(r) === JSON.stringify(results[0])),
              `step ${step} ${JSON.stringify(op)}: ${JSON.stringify(results)}`,
            ).toBe(true);
            record(op, results[0], ledger, clock);
            ledger.settle();
            const snaps: (RunSnapshot | null)[] = [];
            for (const [, s] of impls) snaps.push(await s.runRead(TASK, RUN));
            for (const snap of snaps.slice(1))
              expect(snap, `stores differ at step ${step}`).toEqual(snaps[0]);
            const snap = snaps[0]!;
            const label = `step ${step} ${JSON.stringify(op)}`;
            for (const mod of MODULES) {
              expect(snap.modules[mod]!.nodes, `${label}: ${mod} nodes`).toEqual(
                ledger.counts(mod),
              );
              expect(snap.modules[mod]!.errors, `${label}: ${mod} errors`).toBe(ledger.errors[mod]);
              expect(snap.modules[mod]!.items, `${label}: ${mod} items`).toBe(ledger.items[mod]);
            }
            expect(snap.itemsPending, `${label}: items pending`).toBe(ledger.pendingItems.size);
            expect(snap.state, `${label}: state`).toBe(ledger.state);
            expect(snap.finishedAt !== undefined, `${label}: finishedAt`).toBe(
              ledger.state !== 'running',
            );
            step++;
          }
        } finally {
          await backend.close();
          if (redis) {
            const client = redis.client as Redis;
            const found = await client.keys(`${redis.keyPrefix}*`);
            if (found.length > 0) await client.del(...found);
            await redis.close();
          }
        }
      }),
      { numRuns: url ? 120 : 300 },
    );
    expect(runs).toBeGreaterThan(0);
  });
});

/** The per-op state each store needs (the version of the last EXECUTE is the ledger's). */
async function run(
  s: ChainStateStore,
  op: Op,
  ledger: Ledger,
  clock: ManualClock,
): Promise<unknown> {
  const m = 'm' in op ? MODULES[op.m]! : 'm1';
  const name = 'n' in op ? NAMES[op.n]! : 'root';
  const a = addr(m, name);
  const key = `${m}/${name}`;
  const rec = ledger.nodes.get(key);
  const claim = ledger.claims.get(key);
  switch (op.k) {
    case 'claim':
      return s.claim({
        node: a,
        owner: OWNERS[op.o]!,
        leaseMs: LEASE,
        epoch: rec?.epoch ?? 0,
        root: name === 'root',
      });
    case 'commit':
      return s.commitSuccess({
        node: a,
        owner: claim?.owner ?? 'nobody',
        version: claim?.version ?? 0,
        successors: TREE[name]!.children.map((c) => ({ node: addr(m, c), message: `p${m}/${c}` })),
        items: Array.from({ length: op.items }, (_, i) => `i${key}#${clock.now()}#${i}`),
      });
    case 'fail':
      return s.commitError({
        node: a,
        owner: claim?.owner ?? 'nobody',
        version: claim?.version ?? 0,
        errorHash: `e${rec?.epoch ?? 0}`,
        message: `e${key}@${rec?.epoch ?? 0}`,
      });
    case 'retry': {
      const attempt = (rec?.epoch ?? 0) + 1;
      return s.retrySchedule({
        node: a,
        attempt,
        maxRetries: 3,
        delayMs: 10,
        message: `r${key}@${attempt}`,
        allowed: true,
      });
    }
    case 'giveUp':
      return s.giveUp(a, (rec?.epoch ?? 0) + 1);
    case 'recover':
      return s.recoverZombie(a);
    case 'advance':
      return null; // moved once, by the test loop
    case 'takeAck': {
      const taken = await s.takeOutbox(TASK, 100, 10_000_000);
      if (!op.ack) return { taken, acked: 0 };
      const acked = await s.ackOutbox(
        TASK,
        taken,
        taken.map((e) => (e.startsWith('i') ? RUN : undefined)),
      );
      return { taken, acked };
    }
    case 'cancel':
      return s.runCancel(TASK, RUN);
  }
}

/** Moves the ledger the way a result says the store moved. */
function record(op: Op, result: unknown, ledger: Ledger, clock: ManualClock): void {
  if (op.k === 'advance') return;
  const m = 'm' in op ? MODULES[op.m]! : 'm1';
  const name = 'n' in op ? NAMES[op.n]! : 'root';
  const key = `${m}/${name}`;
  const rec = ledger.nodes.get(key);
  switch (op.k) {
    case 'claim': {
      const r = result as { code: number; version: number };
      if (r.code !== ClaimCode.EXECUTE) return;
      ledger.claims.set(key, { owner: OWNERS[op.o]!, version: r.version });
      if (!rec) ledger.nodes.set(key, { state: 'running', epoch: 0 });
      else if (rec.state === 'queued') rec.state = 'running';
      return;
    }
    case 'commit': {
      if (result !== CommitCode.COMMIT_OK) return;
      rec!.state = 'done';
      for (const c of TREE[name]!.children) {
        const k = `${m}/${c}`;
        if (!ledger.nodes.has(k)) ledger.nodes.set(k, { state: 'queued', epoch: 0 });
      }
      ledger.items[m]! += op.items;
      for (let i = 0; i < op.items; i++) ledger.pendingItems.add(`i${key}#${clock.now()}#${i}`);
      return;
    }
    case 'fail':
      if (result === CommitErrorCode.ERROR_EMIT_OK) {
        ledger.errors[m]!++;
        rec!.failedEpoch = rec!.epoch;
      }
      return;
    case 'retry': {
      const attempt = (rec?.epoch ?? 0) + 1;
      if (result !== RetryScheduleCode.RETRY_SCHEDULED || !rec || attempt <= rec.epoch) return;
      rec.epoch = attempt;
      if (rec.state === 'running') rec.state = 'queued';
      return;
    }
    case 'giveUp':
      if (result === true) rec!.state = 'failed';
      return;
    case 'recover':
      // RecoverCode.RECOVERED: pending again, but still counted running until claimed again
      return;
    case 'takeAck': {
      const r = result as { taken: string[]; acked: number };
      if (op.ack) for (const e of r.taken) ledger.pendingItems.delete(e);
      return;
    }
    case 'cancel':
      if (ledger.state === 'running') ledger.state = 'cancelled';
      return;
  }
}
