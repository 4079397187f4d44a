/**
 * Model-based test of the chain state machine (DESIGN §3.2, §3.3): random sequences of
 * transitions — claims by three owners, commits (of routed nodes too, with de-duplication keys
 * shared across branches), replays (duplicate deliveries), out-of-order
 * deliveries, lease expiry and zombie recovery, thresholds, retries, terminate marks, the
 * fallback gate, the leased outbox (taken, acknowledged now, later or never, and handed out
 * again after its lease), due retries promoted into the outbox, the active-task index and named
 * locks — run in lock-step against a small reference model written
 * here, against LocalChainState, DurableChainState (LMDB) and RedisChainState on a real Redis. Every transition
 * must return the same result on all three, and a ledger kept from the results alone checks
 * the guarantees after every step.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LocalChainState,
  RedisChainState,
  type ChainStateStore,
  type ClaimInput,
  type ClaimResult,
  type CommitErrorInput,
  type CommitSuccessInput,
  type CommitSuccessResult,
  type NodeAddress,
  type RenewLeaseInput,
  type RenewLeaseResult,
  type RetryScheduleInput,
  type Successor,
  type ThresholdInput,
  type TerminatedResult,
  type TerminateScope,
  type ThresholdResult,
} from '../../../src/chain/state/index.js';
import { DurableChainState } from '../../../src/chain/durable-chain-state.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { DurableBackend } from '../../../src/store/durable/durable-backend.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { LocalBackend } from '../../../src/store/local-backend.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { removeTempDataDirs, tempDataDir } from '../../helpers/durable.js';
import { redisUrl } from '../../helpers/redis.js';

// ---------------------------------------------------------------------------------------------
// The universe: 2 tasks x 2 modules, each a small tree of 8 nodes (b and a share the child ax;
// p2, p3 and c1 are routed: to the same step and back to an earlier one, with a cycle). A
// commit gives its successors de-duplication keys from a pool of two, so keys meet across
// branches.

const TASKS = ['t1', 't2'] as const;
/** Tasks for the active-task index (t3 is only ever touched). */
const ACTIVE_TASKS = ['t1', 't2', 't3'] as const;
const LOCKS = ['sweep', 'gc'] as const;
/** Lock TTL: RedisChainState's locks expire on Redis' own clock (PX), not the test clock, so the
 * runs keep locks far from expiry; expiry is in the conformance suite. */
const LOCK_TTL = 3_600_000;
const OUTBOX_LEASES = [100, 1_000] as const;
const byScoreThenMember = (
  x: { score: number; member: string },
  y: { score: number; member: string },
): number =>
  x.score !== y.score ? x.score - y.score : x.member < y.member ? -1 : x.member > y.member ? 1 : 0;
const MODULES = ['m1', 'm2'] as const;
const OWNERS = ['w0', 'w1', 'w2'] as const;
const DEDUP_KEYS = ['k0', 'k1'] as const;
const SHAPE = {
  root: { step: 0, prefix: '', children: ['a', 'b'] },
  a: { step: 1, prefix: 'GET /a', children: ['ax'] },
  b: { step: 1, prefix: 'GET /b', children: ['bx', 'ax'] },
  ax: { step: 2, prefix: 'GET /a/x', children: ['p2'] },
  bx: { step: 2, prefix: 'GET /b/x', children: ['p2', 'c1'] },
  // routed nodes: the last step routes to itself (pagination) and back to step 1 (a cycle)
  p2: { step: 2, prefix: 'GET /a/x#r0', children: ['p3', 'c1'] },
  p3: { step: 2, prefix: 'GET /p2#r0', children: ['c1'] },
  c1: { step: 1, prefix: 'GET /p3#r0', children: ['p2'] },
} as const;
type Shape = keyof typeof SHAPE;
const SHAPES = Object.keys(SHAPE) as Shape[];

interface NodeRef {
  task: number;
  module: number;
  shape: Shape;
}

function address(ref: NodeRef, shape: Shape = ref.shape): NodeAddress {
  return {
    taskId: TASKS[ref.task]!,
    runId: 'r1',
    account: 'acc',
    platform: 'web',
    moduleId: MODULES[ref.module]!,
    stepIdx: SHAPE[shape].step,
    prefixRequest: SHAPE[shape].prefix,
  };
}

const nodeId = (n: NodeAddress): string =>
  JSON.stringify([
    n.taskId,
    n.runId,
    n.account,
    n.platform,
    n.moduleId,
    n.stepIdx,
    n.prefixRequest,
  ]);
const successorMessage = (n: NodeAddress): string => `ptm:${nodeId(n)}`;

// ---------------------------------------------------------------------------------------------
// The reference model: the state machine of DESIGN §3.3 as plain maps.

interface ModelNode {
  status: 'pending' | 'processing' | 'done' | 'failed';
  owner: string;
  version: number;
  leaseUntil: number;
  epoch: number;
}

class ModelChainState implements ChainStateStore {
  readonly nodes = new Map<string, ModelNode>();
  readonly #gates = new Set<string>();
  readonly #emitted = new Set<string>();
  readonly #fallbacks = new Set<string>();
  readonly #terminated = new Map<string, string>();
  readonly #counters = new Map<string, number>();
  readonly #retries = new Map<string, { score: number; member: string }[]>();
  readonly #outbox = new Map<string, string[]>();
  /** Per task: leased outbox entries and when their lease ends. */
  readonly #leases = new Map<string, Map<string, number>>();
  readonly #active = new Map<string, number>();
  readonly #locks = new Map<string, { owner: string; until: number }>();
  /** De-duplication keys taken, as `task|run|module|key`. */
  readonly #dedup = new Set<string>();

  constructor(private readonly clock: ManualClock) {}

  #isTerminated(taskId: string, moduleId: string): boolean {
    return (
      this.#terminated.has(`task|${taskId}`) || this.#terminated.has(`module|${taskId}|${moduleId}`)
    );
  }

  async claim({ node, owner, leaseMs, epoch, root }: ClaimInput): Promise<ClaimResult> {
    const r = (
      code: ClaimResult['code'],
      version = 0,
      leaseUntil = 0,
      reason = '',
    ): ClaimResult => ({
      code,
      version,
      leaseUntil,
      reason,
    });
    if (this.#isTerminated(node.taskId, node.moduleId)) return r(2, 0, 0, 'terminated');
    const id = nodeId(node);
    const rec = this.nodes.get(id) ?? (root ? fresh() : undefined);
    if (!rec) return r(3);
    if (rec.status === 'done') return r(1, rec.version);
    if (epoch < rec.epoch) return r(2, rec.version, 0, 'old_epoch');
    if (epoch > rec.epoch) return r(3, rec.version);
    if (rec.status === 'failed') return r(2, rec.version, 0, 'failed');
    const now = this.clock.now();
    if (rec.status === 'processing' && rec.leaseUntil > now)
      return r(rec.owner === owner ? 0 : 4, rec.version, rec.leaseUntil);
    // a lease that ran out is taken over (and says so)
    const expired = rec.status === 'processing' ? 'expired' : '';
    this.nodes.set(id, {
      status: 'processing',
      owner,
      version: rec.version + 1,
      leaseUntil: now + leaseMs,
      epoch: rec.epoch,
    });
    return r(0, rec.version + 1, now + leaseMs, expired);
  }

  async commitSuccess(input: CommitSuccessInput) {
    return (await this.commitSuccessDetailed(input)).code;
  }

  async commitSuccessDetailed({ node, owner, version, successors, items }: CommitSuccessInput) {
    const r = (code: 0 | 1 | 2 | 3, created = 0, duplicates: number[] = []) => ({
      code,
      created,
      duplicates,
    });
    const id = nodeId(node);
    const rec = this.nodes.get(id);
    if (!rec) return r(1);
    const same = rec.owner === owner && rec.version === version;
    if (rec.status === 'done') return r(same ? 3 : 1);
    if (!same) return r(1);
    if (rec.status !== 'processing' || this.#gates.has(id)) return r(2);
    rec.status = 'done';
    this.#gates.add(id);
    const out = this.#list(this.#outbox, node.taskId);
    let created = 0;
    const duplicates: number[] = [];
    successors.forEach((s, i) => {
      if (s.key !== undefined) {
        const k = `${s.node.taskId}|${s.node.runId}|${s.node.moduleId}|${s.key}`;
        if (this.#dedup.has(k)) {
          duplicates.push(i);
          return;
        }
        this.#dedup.add(k);
      }
      const sid = nodeId(s.node);
      if (this.nodes.has(sid)) return;
      this.nodes.set(sid, fresh());
      created++;
      out.push(s.message);
    });
    out.push(...items);
    return r(0, created, duplicates);
  }

  async commitError({ node, owner, version, errorHash, message }: CommitErrorInput) {
    const id = nodeId(node);
    const rec = this.nodes.get(id);
    if (!rec || rec.owner !== owner || rec.version !== version) return 2 as const;
    if (this.#emitted.has(`${id}|${errorHash}`)) return 1 as const;
    if (rec.status !== 'processing') return 2 as const;
    rec.status = 'failed';
    this.#emitted.add(`${id}|${errorHash}`);
    if (message !== undefined && message !== '')
      this.#list(this.#outbox, node.taskId).push(message);
    return 0 as const;
  }

  async renewLease({ node, owner, version, leaseMs }: RenewLeaseInput): Promise<RenewLeaseResult> {
    const rec = this.nodes.get(nodeId(node));
    if (!rec || rec.status !== 'processing' || rec.owner !== owner || rec.version !== version)
      return { code: 1, leaseUntil: 0 };
    rec.leaseUntil = this.clock.now() + leaseMs;
    return { code: 0, leaseUntil: rec.leaseUntil };
  }

  async recoverZombie(node: NodeAddress) {
    const rec = this.nodes.get(nodeId(node));
    if (!rec || rec.status !== 'processing') return 2 as const;
    if (rec.leaseUntil > this.clock.now()) return 1 as const;
    rec.status = 'pending';
    return 0 as const;
  }

  async thresholdDecide(input: ThresholdInput): Promise<ThresholdResult> {
    const mKey = `${input.taskId}|${input.moduleId}`;
    const tKey = input.taskId;
    const counts = () => ({
      moduleErrors: this.#counters.get(mKey) ?? 0,
      taskErrors: this.#counters.get(tKey) ?? 0,
    });
    if (this.#terminated.has(`task|${input.taskId}`)) return { code: 3, ...counts(), marked: [] };
    if (this.#terminated.has(`module|${mKey}`)) return { code: 2, ...counts(), marked: [] };
    this.#counters.set(mKey, counts().moduleErrors + 1);
    this.#counters.set(tKey, counts().taskErrors + 1);
    const c = counts();
    // reaching a threshold writes its mark in the same decision, module first, then task
    const marked: TerminateScope[] = [];
    if (c.moduleErrors >= input.moduleThreshold) marked.push('module');
    if (c.taskErrors >= input.taskThreshold) marked.push('task');
    const counted = `(module ${c.moduleErrors}, task ${c.taskErrors})`;
    for (const scope of marked)
      this.#terminated.set(
        scope === 'module' ? `module|${mKey}` : `task|${tKey}`,
        `threshold: ${scope} errors reached ${counted}`,
      );
    const code =
      c.taskErrors >= input.taskThreshold
        ? 3
        : c.moduleErrors >= input.moduleThreshold
          ? 2
          : input.retryAfterMs > 0
            ? 1
            : 0;
    return { code, ...c, marked };
  }

  async retrySchedule(input: RetryScheduleInput) {
    const { node } = input;
    if (!input.allowed || this.#isTerminated(node.taskId, node.moduleId)) return 1 as const;
    if (input.attempt > input.maxRetries) return 2 as const;
    const rec = this.nodes.get(nodeId(node));
    if (!rec || rec.status === 'done') return 1 as const;
    if (rec.epoch >= input.attempt) return 0 as const;
    const now = this.clock.now();
    if (rec.status === 'processing' && rec.leaseUntil > now) return 1 as const;
    rec.epoch = input.attempt;
    rec.status = 'pending';
    rec.owner = '';
    const set = this.#list(this.#retries, node.taskId).filter((e) => e.member !== input.message);
    set.push({ score: now + input.delayMs, member: input.message });
    set.sort(byScoreThenMember);
    this.#retries.set(node.taskId, set);
    return 0 as const;
  }

  async promoteDueRetries(taskId: string, max: number): Promise<string[]> {
    const set = this.#list(this.#retries, taskId);
    const now = this.clock.now();
    const due = set.filter((e) => e.score <= now).slice(0, max);
    this.#retries.set(
      taskId,
      set.filter((e) => !due.includes(e)),
    );
    this.#list(this.#outbox, taskId).push(...due.map((e) => e.member));
    return due.map((e) => e.member);
  }

  async touchTask(taskId: string): Promise<void> {
    this.#active.set(taskId, this.clock.now());
  }

  async activeTasks(windowMs: number, max: number): Promise<string[]> {
    const since = this.clock.now() - windowMs;
    for (const [id, at] of this.#active) if (at < since) this.#active.delete(id);
    return [...this.#active]
      .map(([member, score]) => ({ score, member }))
      .sort(byScoreThenMember)
      .reverse()
      .slice(0, max)
      .map((e) => e.member);
  }

  async tryLock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    const lock = this.#locks.get(name);
    if (lock && lock.until > now && lock.owner !== owner) return false;
    this.#locks.set(name, { owner, until: now + ttlMs });
    return true;
  }

  // the model runs one run per task ('r1'): marks and counters are per run, so per task here
  async terminateMark(
    taskId: string,
    _runId: string,
    moduleId: string | undefined,
    reason: string,
  ) {
    const key = moduleId === undefined ? `task|${taskId}` : `module|${taskId}|${moduleId}`;
    if (this.#terminated.has(key)) return 1 as const;
    this.#terminated.set(key, reason);
    return 0 as const;
  }

  async terminated(taskId: string, _runId: string, moduleId: string): Promise<TerminatedResult> {
    const task = this.#terminated.get(`task|${taskId}`);
    if (task !== undefined) return { code: 1, reason: task };
    const mod = this.#terminated.get(`module|${taskId}|${moduleId}`);
    if (mod !== undefined) return { code: 2, reason: mod };
    return { code: 0, reason: '' };
  }

  async tryAllowFallbackOnce(node: NodeAddress) {
    if (this.#fallbacks.has(nodeId(node))) return 1 as const;
    this.#fallbacks.add(nodeId(node));
    return 0 as const;
  }

  async takeOutbox(taskId: string, max: number, leaseMs: number): Promise<string[]> {
    const now = this.clock.now();
    const leases = this.#leases.get(taskId) ?? new Map<string, number>();
    this.#leases.set(taskId, leases);
    const expired = [...leases]
      .filter(([, until]) => until <= now)
      .map(([member, score]) => ({ score, member }))
      .sort(byScoreThenMember)
      .slice(0, max)
      .map((e) => e.member);
    const fresh = this.#list(this.#outbox, taskId).splice(0, Math.max(0, max - expired.length));
    const out = [...expired, ...fresh];
    for (const e of out) leases.set(e, now + leaseMs);
    return out;
  }

  async ackOutbox(taskId: string, entries: string[]): Promise<number> {
    const leases = this.#leases.get(taskId);
    let removed = 0;
    for (const e of entries) if (leases?.delete(e)) removed++;
    return removed;
  }

  // Run records are not modelled here (no call of this test starts a run, and a transition counts
  // nothing for a run without a record); test/property/chain/run-counters.property.test.ts
  // holds the run counters to a ledger of the transitions' results.
  runStart(): never {
    throw new Error('not modelled');
  }
  runDispatch(): never {
    throw new Error('not modelled');
  }
  runCancel(): never {
    throw new Error('not modelled');
  }
  runRead(): never {
    throw new Error('not modelled');
  }
  giveUp(): never {
    throw new Error('not modelled');
  }
  runCleanup(): never {
    throw new Error('not modelled');
  }
  indexRunKeys(): never {
    throw new Error('not modelled');
  }

  #list<T>(map: Map<string, T[]>, key: string): T[] {
    let list = map.get(key);
    if (!list) map.set(key, (list = []));
    return list;
  }
}

function fresh(): ModelNode {
  return { status: 'pending', owner: '', version: 0, leaseUntil: 0, epoch: 0 };
}

// ---------------------------------------------------------------------------------------------
// Concrete calls, and the ledger that checks the guarantees from results alone.

type Call =
  | { k: 'claim'; input: ClaimInput }
  | { k: 'commit'; input: CommitSuccessInput }
  | { k: 'commitError'; input: CommitErrorInput }
  | { k: 'recover'; node: NodeAddress }
  | { k: 'renew'; input: RenewLeaseInput }
  | { k: 'decide'; input: ThresholdInput }
  | { k: 'retry'; input: RetryScheduleInput }
  | { k: 'promote'; taskId: string; max: number }
  | { k: 'terminate'; taskId: string; moduleId: string | undefined; reason: string }
  | { k: 'terminated'; taskId: string; moduleId: string }
  | { k: 'fallback'; node: NodeAddress }
  | { k: 'takeOutbox'; taskId: string; max: number; leaseMs: number }
  | { k: 'takeAck'; taskId: string; max: number; leaseMs: number }
  | { k: 'ack'; taskId: string; entries: string[] }
  | { k: 'touch'; taskId: string }
  | { k: 'active'; windowMs: number; max: number }
  | { k: 'lock'; name: string; owner: string }
  | { k: 'advance'; ms: number };

/** Result of a `takeAck` call: what a relay was handed, and what its acknowledgement removed. */
interface TakeAck {
  taken: string[];
  acked: number;
}

async function exec(s: ChainStateStore, call: Call, clock: ManualClock): Promise<unknown> {
  switch (call.k) {
    case 'claim':
      return s.claim(call.input);
    case 'commit':
      return s.commitSuccessDetailed(call.input);
    case 'commitError':
      return s.commitError(call.input);
    case 'recover':
      return s.recoverZombie(call.node);
    case 'renew':
      return s.renewLease(call.input);
    case 'decide':
      return s.thresholdDecide(call.input);
    case 'retry':
      return s.retrySchedule(call.input);
    case 'promote':
      return s.promoteDueRetries(call.taskId, call.max);
    case 'terminate':
      return s.terminateMark(call.taskId, 'r1', call.moduleId, call.reason);
    case 'terminated':
      return s.terminated(call.taskId, 'r1', call.moduleId);
    case 'fallback':
      return s.tryAllowFallbackOnce(call.node);
    case 'takeOutbox':
      return s.takeOutbox(call.taskId, call.max, call.leaseMs);
    case 'takeAck': {
      const taken = await s.takeOutbox(call.taskId, call.max, call.leaseMs);
      return { taken, acked: await s.ackOutbox(call.taskId, taken) } satisfies TakeAck;
    }
    case 'ack':
      return s.ackOutbox(call.taskId, call.entries);
    case 'touch':
      return s.touchTask(call.taskId);
    case 'active':
      return s.activeTasks(call.windowMs, call.max);
    case 'lock':
      return s.tryLock(call.name, call.owner, LOCK_TTL);
    case 'advance':
      clock.advance(call.ms);
      return clock.now();
  }
}

interface Grant {
  node: NodeAddress;
  owner: string;
  version: number;
  epoch: number;
  /** Recovered, failed, committed or superseded by a retry: no commit may be accepted from it. */
  spent: boolean;
}

/**
 * Checks the guarantees of DESIGN §3.2 from what the transitions returned, independently of the
 * model: fencing, advance at most once, error at most once, threshold counting and the outbox.
 */
class Ledger {
  readonly #grants = new Map<string, Grant>();
  readonly #committed = new Set<string>();
  readonly #errors = new Set<string>();
  readonly #exists = new Set<string>();
  /** De-duplication keys that created a node (or found it existing), as `task|run|module|key`. */
  readonly #keys = new Set<string>();
  readonly #terminated = new Set<string>();
  readonly #decides = new Map<string, number>();
  /** Per task: entries queued and not yet handed out, in commit order. */
  readonly #queued = new Map<string, string[]>();
  /** Per task: entries handed out and not acknowledged, with the end of their lease. */
  readonly #leased = new Map<string, Map<string, number>>();
  /** Every entry ever queued (entries are unique here: each is produced at most once). */
  readonly #everQueued = new Set<string>();
  readonly #acked = new Set<string>();
  readonly #scheduled = new Set<string>();
  readonly #promoted = new Set<string>();
  readonly #touched = new Map<string, number>();
  readonly #locks = new Map<string, { owner: string; until: number }>();
  /** What the runs reached, to check that the interesting cases happen at all. */
  readonly stats = {
    deduplicated: 0,
    routedCreated: 0,
    redelivered: 0,
    ackedNone: 0,
    ackedSome: 0,
    errorQueued: 0,
    promoted: 0,
    lockHeld: 0,
    lockRenewed: 0,
    activeDropped: 0,
  };
  /** Every grant handed out, including superseded ones, for the tests to commit with. */
  readonly history: Grant[] = [];

  /** Entries queued and never acknowledged. */
  unacknowledged(): string[] {
    return [...this.#everQueued].filter((e) => !this.#acked.has(e));
  }

  #queue(taskId: string, entry: string): void {
    expect(this.#everQueued.has(entry), `${entry} queued in the outbox twice`).toBe(false);
    this.#everQueued.add(entry);
    const q = this.#queued.get(taskId) ?? [];
    this.#queued.set(taskId, q);
    q.push(entry);
  }

  #take(taskId: string, max: number, leaseMs: number, taken: string[], now: number): void {
    const leased = this.#leased.get(taskId) ?? new Map<string, number>();
    this.#leased.set(taskId, leased);
    const queued = this.#queued.get(taskId) ?? [];
    for (const e of taken) {
      expect(this.#acked.has(e), `${e} handed out after it was acknowledged`).toBe(false);
      const until = leased.get(e);
      if (until !== undefined) {
        expect(until, `${e} handed out while another relay's lease runs`).toBeLessThanOrEqual(now);
        this.stats.redelivered++;
      }
    }
    // expired leases first (oldest lease first), then the queue in commit order
    const expired = [...leased]
      .filter(([, until]) => until <= now)
      .map(([member, score]) => ({ score, member }))
      .sort(byScoreThenMember)
      .map((e) => e.member);
    const fromLeases = expired.slice(0, max);
    const fromQueue = queued.splice(0, Math.max(0, max - fromLeases.length));
    expect(taken, 'expired leases first, then the outbox in commit order').toEqual([
      ...fromLeases,
      ...fromQueue,
    ]);
    for (const e of taken) leased.set(e, now + leaseMs);
  }

  #ack(taskId: string, entries: string[], acked: number): void {
    const leased = this.#leased.get(taskId);
    let still = 0;
    for (const e of new Set(entries)) {
      if (leased?.delete(e)) still++;
      if (this.#everQueued.has(e)) this.#acked.add(e);
    }
    expect(acked, 'ackOutbox counts the entries that were still leased').toBe(still);
    if (acked === 0) this.stats.ackedNone++;
    else this.stats.ackedSome++;
  }

  apply(call: Call, result: unknown, now: number): void {
    switch (call.k) {
      case 'claim': {
        const r = result as ClaimResult;
        if (r.code !== 0) return;
        const id = nodeId(call.input.node);
        const last = this.#grants.get(id);
        if (last && r.version === last.version) {
          // a replay within the lease: same owner, same claim
          expect(call.input.owner, 'an EXECUTE replay is only for the same owner').toBe(last.owner);
          expect(last.spent, 'a spent claim is never replayed as EXECUTE').toBe(false);
          return;
        }
        expect(r.version, 'fencing versions increase').toBeGreaterThan(last?.version ?? 0);
        if (last) last.spent = true;
        const grant: Grant = {
          node: call.input.node,
          owner: call.input.owner,
          version: r.version,
          epoch: call.input.epoch,
          spent: false,
        };
        this.#grants.set(id, grant);
        this.history.push(grant);
        this.#exists.add(id);
        return;
      }
      case 'commit': {
        const r = result as CommitSuccessResult;
        if (r.code !== 0) {
          expect(r.duplicates, 'a refused commit reports no duplicate').toEqual([]);
          return;
        }
        const { node, owner, version } = call.input;
        const id = nodeId(node);
        expect(this.#committed.has(id), `node ${id} committed twice`).toBe(false);
        this.#committed.add(id);
        this.#checkFencing(id, owner, version);
        const duplicates = new Set(r.duplicates);
        let created = 0;
        for (const [i, s] of call.input.successors.entries()) {
          const sid = nodeId(s.node);
          if (s.key !== undefined) {
            // a key lets one input through per run and module, whichever branch pushes it
            const k = `${s.node.taskId}|${s.node.runId}|${s.node.moduleId}|${s.key}`;
            expect(duplicates.has(i), `successor ${i} (key ${k}) is a duplicate`).toBe(
              this.#keys.has(k),
            );
            if (duplicates.has(i)) {
              this.stats.deduplicated++;
              continue;
            }
            this.#keys.add(k);
          } else {
            expect(duplicates.has(i), 'only a keyed successor is a duplicate').toBe(false);
          }
          if (this.#exists.has(sid)) continue;
          this.#exists.add(sid);
          created++;
          if (s.node.stepIdx <= node.stepIdx) this.stats.routedCreated++;
          this.#queue(node.taskId, s.message);
        }
        expect(r.created, 'the commit reports the successors it created').toBe(created);
        for (const item of call.input.items) this.#queue(node.taskId, item);
        return;
      }
      case 'commitError': {
        if (result !== 0) return;
        const { node, owner, version, errorHash } = call.input;
        const key = `${nodeId(node)}|${errorHash}`;
        expect(this.#errors.has(key), `failure ${key} emitted twice`).toBe(false);
        this.#errors.add(key);
        this.#checkFencing(nodeId(node), owner, version);
        if (call.input.message !== undefined) {
          this.#queue(node.taskId, call.input.message);
          this.stats.errorQueued++;
        }
        return;
      }
      case 'renew': {
        if ((result as RenewLeaseResult).code !== 0) return;
        // only the live claim of its owner and version is renewed
        const { node, owner, version } = call.input;
        const g = this.#grants.get(nodeId(node));
        expect(g, `a lease of ${nodeId(node)} renewed without a claim`).toBeDefined();
        expect(
          { owner, version, spent: false },
          `a lease of ${nodeId(node)} renewed for a fenced-off owner/version`,
        ).toEqual({ owner: g!.owner, version: g!.version, spent: g!.spent });
        return;
      }
      case 'recover': {
        if (result !== 0) return;
        const g = this.#grants.get(nodeId(call.node));
        expect(g, 'only a claimed node is recovered').toBeDefined();
        g!.spent = true;
        return;
      }
      case 'retry': {
        if (result !== 0) return;
        const g = this.#grants.get(nodeId(call.input.node));
        if (g && call.input.attempt > g.epoch) g.spent = true;
        this.#scheduled.add(call.input.message);
        return;
      }
      case 'terminate':
        this.#terminated.add(
          call.moduleId === undefined ? call.taskId : `${call.taskId}|${call.moduleId}`,
        );
        return;
      case 'decide': {
        const { taskId, moduleId } = call.input;
        const mKey = `${taskId}|${moduleId}`;
        if (!this.#terminated.has(taskId) && !this.#terminated.has(mKey)) {
          this.#decides.set(mKey, (this.#decides.get(mKey) ?? 0) + 1);
          this.#decides.set(taskId, (this.#decides.get(taskId) ?? 0) + 1);
        }
        const r = result as ThresholdResult;
        expect(r.moduleErrors, 'module counter = applied decides').toBe(
          this.#decides.get(mKey) ?? 0,
        );
        expect(r.taskErrors, 'task counter = applied decides').toBe(this.#decides.get(taskId) ?? 0);
        // a threshold reached by this failure is marked by this decision: the task's whenever
        // the task's is reached (whatever the module's), the module's before it
        const mt = call.input.moduleThreshold;
        const tt = call.input.taskThreshold;
        const fresh = r.marked.length > 0;
        if (fresh) {
          expect(r.marked, 'marks written: module first, then task').toEqual(
            [r.moduleErrors >= mt && 'module', r.taskErrors >= tt && 'task'].filter(Boolean),
          );
          expect(r.code, 'the task mark answers TERMINATE_TASK').toBe(
            r.marked.includes('task') ? 3 : 2,
          );
          for (const scope of r.marked) this.#terminated.add(scope === 'task' ? taskId : mKey);
        }
        return;
      }
      case 'promote': {
        for (const m of result as string[]) {
          expect(this.#scheduled.has(m), `${m} promoted but never scheduled`).toBe(true);
          expect(this.#promoted.has(m), `retry ${m} promoted twice`).toBe(false);
          this.#promoted.add(m);
          this.#queue(call.taskId, m);
          this.stats.promoted++;
        }
        return;
      }
      case 'takeOutbox':
        this.#take(call.taskId, call.max, call.leaseMs, result as string[], now);
        return;
      case 'takeAck': {
        const r = result as TakeAck;
        this.#take(call.taskId, call.max, call.leaseMs, r.taken, now);
        this.#ack(call.taskId, r.taken, r.acked);
        return;
      }
      case 'ack':
        this.#ack(call.taskId, call.entries, result as number);
        return;
      case 'touch':
        this.#touched.set(call.taskId, now);
        return;
      case 'active': {
        const since = now - call.windowMs;
        const before = this.#touched.size;
        for (const [id, at] of this.#touched) if (at < since) this.#touched.delete(id);
        if (this.#touched.size < before) this.stats.activeDropped++;
        const expected = [...this.#touched]
          .sort(([a, x], [b, y]) => (x !== y ? y - x : a < b ? 1 : a > b ? -1 : 0))
          .slice(0, call.max)
          .map(([id]) => id);
        expect(result, 'the tasks touched within the window, most recent first').toEqual(expected);
        return;
      }
      case 'lock': {
        const held = this.#locks.get(call.name);
        const live = held !== undefined && held.until > now;
        const mine = live && held.owner === call.owner;
        expect(result, `lock ${call.name}: exclusive while held, renewable by its owner`).toBe(
          !live || mine,
        );
        if (!live || mine) this.#locks.set(call.name, { owner: call.owner, until: now + LOCK_TTL });
        if (mine) this.stats.lockRenewed++;
        if (live && !mine) this.stats.lockHeld++;
        return;
      }
      default:
        return;
    }
  }

  #checkFencing(id: string, owner: string, version: number): void {
    const g = this.#grants.get(id);
    expect(g, `a commit of ${id} accepted without a claim`).toBeDefined();
    expect(
      { owner, version, spent: false },
      `a commit of ${id} accepted from a fenced-off owner/version`,
    ).toEqual({ owner: g!.owner, version: g!.version, spent: g!.spent });
    g!.spent = true;
  }
}

// ---------------------------------------------------------------------------------------------
// Generated operations, resolved to concrete calls against the model's state at run time.

type Op =
  | {
      t: 'claim';
      node: NodeRef;
      owner: number;
      epoch: 'cur' | 'older' | 'newer';
      lease: number;
      root: 'auto' | 'yes' | 'no';
    }
  | {
      t: 'commit';
      grant: number;
      mask: number;
      dup: boolean;
      /** Per successor: the index of its de-duplication key, or -1 for none. */
      keys: number[];
      items: number;
      tamper: Tamper;
    }
  | { t: 'commitError'; grant: number; hash: number; tamper: Tamper; message: boolean }
  | { t: 'renew'; grant: number; tamper: Tamper; lease: number }
  | { t: 'replay'; back: number }
  | { t: 'early'; node: NodeRef; owner: number }
  | { t: 'advance'; ms: number }
  | { t: 'zombie'; grant: number | null; node: NodeRef; expire: boolean }
  | { t: 'decide'; task: number; module: number; mt: number; tt: number; ra: number }
  | {
      t: 'retry';
      grant: number | null;
      node: NodeRef;
      expire: boolean;
      attempt: 'next' | 'same' | number;
      max: number;
      delay: number;
      allowed: boolean;
    }
  | { t: 'promote'; task: number; max: number; wait: number }
  | { t: 'terminate'; task: number; module: number | null; reason: number }
  | { t: 'terminated'; task: number; module: number }
  | { t: 'fallback'; node: NodeRef }
  | { t: 'takeOutbox'; task: number; max: number; lease: number; ack: 'now' | 'never' }
  | { t: 'redeliver'; task: number; max: number; lease: number }
  | { t: 'ack'; back: number; bogus: boolean }
  | { t: 'touch'; task: number }
  | { t: 'active'; window: number; max: number }
  | { t: 'lock'; name: number; owner: number };
type Tamper = 'none' | 'owner' | 'version';

const nodeRef: fc.Arbitrary<NodeRef> = fc.record({
  task: fc.nat(TASKS.length - 1),
  module: fc.nat(MODULES.length - 1),
  shape: fc.constantFrom(...SHAPES),
});
const tamper = fc.constantFrom<Tamper>('none', 'none', 'none', 'none', 'owner', 'version');
const grantRef = fc.oneof(fc.constant(0), fc.nat(6));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('claim' as const),
      node: nodeRef,
      owner: fc.nat(OWNERS.length - 1),
      epoch: fc.constantFrom(
        'cur' as const,
        'cur' as const,
        'cur' as const,
        'older' as const,
        'newer' as const,
      ),
      lease: fc.constantFrom(100, 500, 1_000),
      root: fc.constantFrom(
        'auto' as const,
        'auto' as const,
        'auto' as const,
        'yes' as const,
        'no' as const,
      ),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('commit' as const),
      grant: grantRef,
      mask: fc.nat(3),
      dup: fc.boolean(),
      keys: fc.array(fc.constantFrom(-1, -1, 0, 1), { minLength: 3, maxLength: 3 }),
      items: fc.nat(2),
      tamper,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('commitError' as const),
      grant: grantRef,
      hash: fc.nat(1),
      tamper,
      message: fc.constantFrom(true, true, false),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('renew' as const),
      grant: grantRef,
      tamper,
      lease: fc.constantFrom(100, 500, 1_000),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('replay' as const), back: fc.nat(10) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('early' as const),
      node: nodeRef,
      owner: fc.nat(OWNERS.length - 1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('advance' as const),
      ms: fc.constantFrom(0, 50, 300, 1_200),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('zombie' as const),
      grant: fc.option(grantRef, { freq: 4 }),
      node: nodeRef,
      expire: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('decide' as const),
      task: fc.nat(TASKS.length - 1),
      module: fc.nat(MODULES.length - 1),
      mt: fc.integer({ min: 1, max: 5 }),
      tt: fc.integer({ min: 1, max: 8 }),
      ra: fc.constantFrom(0, 0, 250),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('retry' as const),
      grant: fc.option(grantRef, { freq: 4 }),
      node: nodeRef,
      expire: fc.boolean(),
      attempt: fc.oneof(fc.constant('next' as const), fc.constant('same' as const), fc.nat(3)),
      max: fc.nat(3),
      delay: fc.constantFrom(0, 100, 1_000),
      allowed: fc.constantFrom(true, true, true, false),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('promote' as const),
      task: fc.nat(TASKS.length - 1),
      max: fc.nat(3),
      wait: fc.constantFrom(0, 0, 100, 1_000),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('terminate' as const),
      task: fc.nat(TASKS.length - 1),
      module: fc.option(fc.nat(MODULES.length - 1), { freq: 3 }),
      reason: fc.nat(2),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('terminated' as const),
      task: fc.nat(TASKS.length - 1),
      module: fc.nat(MODULES.length - 1),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('fallback' as const), node: nodeRef }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('takeOutbox' as const),
      task: fc.nat(TASKS.length - 1),
      max: fc.nat(4),
      lease: fc.constantFrom(...OUTBOX_LEASES),
      ack: fc.constantFrom('now' as const, 'now' as const, 'never' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('redeliver' as const),
      task: fc.nat(TASKS.length - 1),
      max: fc.integer({ min: 1, max: 4 }),
      lease: fc.constantFrom(...OUTBOX_LEASES),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('ack' as const), back: fc.nat(4), bogus: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('touch' as const),
      task: fc.nat(ACTIVE_TASKS.length - 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('active' as const),
      window: fc.constantFrom(0, 100, 1_000, 60_000),
      max: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('lock' as const),
      name: fc.nat(LOCKS.length - 1),
      owner: fc.nat(OWNERS.length - 1),
    }),
  },
);

interface RunState {
  model: ModelChainState;
  ledger: Ledger;
  /** Calls that a duplicate delivery may repeat verbatim. */
  replayable: Call[];
  /** Entries handed out by `takeOutbox` calls (not acknowledged by them), for later acks. */
  unacked: { taskId: string; entries: string[] }[];
  step: number;
  clock: ManualClock;
}

function resolve(op: Op, st: RunState): Call[] {
  const { model, ledger } = st;
  const pickGrant = (back: number): Grant => {
    const h = ledger.history;
    if (h.length === 0)
      return {
        node: address({ task: 0, module: 0, shape: 'root' }),
        owner: 'w0',
        version: 1,
        epoch: 0,
        spent: false,
      };
    return h[h.length - 1 - (back % h.length)]!;
  };
  const fenced = (g: Grant, t: Tamper) => ({
    owner:
      t === 'owner'
        ? OWNERS[(OWNERS.indexOf(g.owner as (typeof OWNERS)[number]) + 1) % OWNERS.length]!
        : g.owner,
    version: t === 'version' ? g.version + 1 : g.version,
  });
  switch (op.t) {
    case 'claim': {
      const node = address(op.node);
      const cur = model.nodes.get(nodeId(node))?.epoch ?? 0;
      const epoch =
        op.epoch === 'cur' ? cur : op.epoch === 'older' ? Math.max(0, cur - 1) : cur + 1;
      const root = op.root === 'auto' ? node.stepIdx === 0 : op.root === 'yes';
      return [
        { k: 'claim', input: { node, owner: OWNERS[op.owner]!, leaseMs: op.lease, epoch, root } },
      ];
    }
    case 'commit': {
      const g = pickGrant(op.grant);
      const shape = SHAPES.find(
        (s) => address({ task: 0, module: 0, shape: s }).prefixRequest === g.node.prefixRequest,
      )!;
      const children = SHAPE[shape].children as readonly Shape[];
      const ref: NodeRef = {
        task: TASKS.indexOf(g.node.taskId as (typeof TASKS)[number]),
        module: MODULES.indexOf(g.node.moduleId as (typeof MODULES)[number]),
        shape,
      };
      const successors: Successor[] = children
        .filter((_, i) => (op.mask >> i) & 1)
        .map((c, i) => {
          const child = address(ref, c);
          const key = op.keys[i]!;
          const successor: Successor = { node: child, message: successorMessage(child) };
          if (key >= 0) successor.key = DEDUP_KEYS[key];
          return successor;
        });
      if (op.dup && successors.length > 0) successors.push({ ...successors[0]! });
      const items = Array.from({ length: op.items }, (_, j) => `item:${st.step}:${j}`);
      return [{ k: 'commit', input: { node: g.node, ...fenced(g, op.tamper), successors, items } }];
    }
    case 'renew': {
      const g = pickGrant(op.grant);
      return [{ k: 'renew', input: { node: g.node, ...fenced(g, op.tamper), leaseMs: op.lease } }];
    }
    case 'commitError': {
      const g = pickGrant(op.grant);
      return [
        {
          k: 'commitError',
          input: {
            node: g.node,
            ...fenced(g, op.tamper),
            errorHash: `e${op.hash}`,
            ...(op.message ? { message: `error:${nodeId(g.node)}|e${op.hash}` } : {}),
          },
        },
      ];
    }
    case 'replay': {
      const r = st.replayable;
      return r.length === 0 ? [] : [r[r.length - 1 - (op.back % r.length)]!];
    }
    case 'early': {
      const node = address({ ...op.node, shape: op.node.shape === 'root' ? 'a' : op.node.shape });
      return [
        {
          k: 'claim',
          input: { node, owner: OWNERS[op.owner]!, leaseMs: 500, epoch: 0, root: false },
        },
      ];
    }
    case 'advance':
      return [{ k: 'advance', ms: op.ms }];
    case 'zombie': {
      // mostly a node that was claimed lately (a lease that may expire), sometimes any node
      const node = op.grant === null ? address(op.node) : pickGrant(op.grant).node;
      const rec = model.nodes.get(nodeId(node));
      const calls: Call[] = [];
      if (op.expire && rec?.status === 'processing') {
        calls.push({ k: 'advance', ms: Math.max(0, rec.leaseUntil - st.clock.now()) + 1 });
      }
      calls.push({ k: 'recover', node });
      return calls;
    }
    case 'decide':
      return [
        {
          k: 'decide',
          input: {
            taskId: TASKS[op.task]!,
            runId: 'r1',
            moduleId: MODULES[op.module]!,
            moduleThreshold: op.mt,
            taskThreshold: op.tt,
            retryAfterMs: op.ra,
          },
        },
      ];
    case 'retry': {
      // mostly a node that was claimed lately (often failed, or with a lease that may expire)
      const node = op.grant === null ? address(op.node) : pickGrant(op.grant).node;
      const rec = model.nodes.get(nodeId(node));
      const cur = rec?.epoch ?? 0;
      const attempt = op.attempt === 'next' ? cur + 1 : op.attempt === 'same' ? cur : op.attempt;
      const calls: Call[] = [];
      if (op.expire && rec?.status === 'processing') {
        calls.push({ k: 'advance', ms: Math.max(0, rec.leaseUntil - st.clock.now()) + 1 });
      }
      return [
        ...calls,
        {
          k: 'retry',
          input: {
            node,
            attempt,
            maxRetries: op.max,
            delayMs: op.delay,
            message: `retry:${attempt}:${nodeId(node)}`,
            allowed: op.allowed,
          },
        },
      ];
    }
    case 'promote':
      return [
        ...(op.wait > 0 ? [{ k: 'advance' as const, ms: op.wait }] : []),
        { k: 'promote', taskId: TASKS[op.task]!, max: op.max },
      ];
    case 'terminate':
      return [
        {
          k: 'terminate',
          taskId: TASKS[op.task]!,
          moduleId: op.module === null ? undefined : MODULES[op.module]!,
          reason: `reason ${op.reason}`,
        },
      ];
    case 'terminated':
      return [{ k: 'terminated', taskId: TASKS[op.task]!, moduleId: MODULES[op.module]! }];
    case 'fallback':
      return [{ k: 'fallback', node: address(op.node) }];
    case 'takeOutbox': {
      const c = { taskId: TASKS[op.task]!, max: op.max, leaseMs: op.lease };
      return [op.ack === 'now' ? { k: 'takeAck', ...c } : { k: 'takeOutbox', ...c }];
    }
    case 'redeliver': {
      // a relay takes and dies; after its lease, another relay is handed the same entries
      const taskId = TASKS[op.task]!;
      return [
        { k: 'takeOutbox', taskId, max: op.max, leaseMs: op.lease },
        { k: 'advance', ms: op.lease },
        { k: 'takeAck', taskId, max: op.max, leaseMs: op.lease },
      ];
    }
    case 'ack': {
      // a late acknowledgement: its lease may have run out, or another relay may hold it now
      const u = st.unacked;
      const last = u.length === 0 ? null : u[u.length - 1 - (op.back % u.length)]!;
      const taskId = last?.taskId ?? TASKS[0];
      const entries = [...(last?.entries ?? []), ...(op.bogus ? ['never-queued'] : [])];
      return [{ k: 'ack', taskId, entries }];
    }
    case 'touch':
      return [{ k: 'touch', taskId: ACTIVE_TASKS[op.task]! }];
    case 'active':
      return [{ k: 'active', windowMs: op.window, max: op.max }];
    case 'lock':
      return [{ k: 'lock', name: LOCKS[op.name]!, owner: OWNERS[op.owner]! }];
  }
}

// ---------------------------------------------------------------------------------------------

const url = redisUrl();
/** The transitions that return a result code (the others return entries, counts or nothing). */
const CODED = new Set<Call['k']>([
  'claim',
  'commit',
  'commitError',
  'recover',
  'renew',
  'decide',
  'retry',
  'terminate',
  'terminated',
  'fallback',
]);
const NUM_RUNS = Number(process.env.MOCRA_MODEL_RUNS ?? 800);

describe('chain state machine: model vs LocalChainState vs DurableChainState vs RedisChainState', () => {
  let redis: RedisBackend | null = null;
  const testPrefix = `mocra-test-${randomBytes(6).toString('hex')}:`;
  let runSeq = 0;
  /** One durable store for every run (keys are per run); its clock follows the run's clock. */
  let durable: DurableBackend;
  let runClock = new ManualClock(0);

  beforeAll(async () => {
    durable = await DurableBackend.open({
      path: tempDataDir('model'),
      clock: { now: () => runClock.now() },
      sweepIntervalMs: 0,
    });
    if (!url) {
      console.warn('state-model property test: no Redis available, checking LocalChainState only');
      return;
    }
    redis = new RedisBackend({ redis: url, keyPrefix: testPrefix });
    await redis.connect();
  });
  afterAll(async () => {
    await durable.close();
    removeTempDataDirs();
    if (!redis) return;
    for await (const key of redis.scan('')) await redis.del(key);
    await redis.close();
  });

  it(`same results on all implementations, and the guarantees hold after every step (${NUM_RUNS} runs)`, async () => {
    let redisSteps = 0;
    const seen = new Map<string, Set<number>>();
    const note = (call: Call, result: unknown): void => {
      const code =
        typeof result === 'number'
          ? result
          : typeof result === 'object' && result !== null && 'code' in result
            ? (result as { code: number }).code
            : undefined;
      if (code === undefined || !CODED.has(call.k)) return;
      const codes = seen.get(call.k) ?? new Set<number>();
      seen.set(call.k, codes.add(code));
    };
    const stats = {
      deduplicated: 0,
      routedCreated: 0,
      redelivered: 0,
      ackedNone: 0,
      ackedSome: 0,
      errorQueued: 0,
      promoted: 0,
      lockHeld: 0,
      lockRenewed: 0,
      activeDropped: 0,
    };
    await fc.assert(
      fc.asyncProperty(
        // a small clock and a realistic epoch-ms clock (Lua numbers must keep full precision)
        fc.constantFrom(1_000_000, 1_753_000_000_000),
        fc.array(opArb, { minLength: 1, maxLength: 80, size: 'max' }),
        async (start, ops) => {
          const clock = new ManualClock(start);
          runClock = clock;
          const backend = new LocalBackend({ clock, sweepIntervalMs: 0 });
          const keys = new ChainKeyBuilder({ prefix: `run${runSeq++}` });
          const impls: [string, ChainStateStore][] = [
            ['local', new LocalChainState(backend, { keys })],
            ['durable', new DurableChainState(durable, { keys })],
          ];
          if (redis) impls.push(['redis', new RedisChainState(redis, { keys, testClock: clock })]);
          const st: RunState = {
            model: new ModelChainState(clock),
            ledger: new Ledger(),
            replayable: [],
            unacked: [],
            step: 0,
            clock,
          };
          try {
            for (const op of ops) {
              for (const call of resolve(op, st)) {
                const label = `step ${st.step}: ${JSON.stringify(call)}`;
                const expected = await exec(st.model, call, clock);
                if (call.k === 'advance') continue; // the clock is shared: advance it once
                for (const [name, impl] of impls) {
                  expect(
                    await exec(impl, call, clock),
                    `${name} differs from the model at ${label}`,
                  ).toEqual(expected);
                }
                if (redis) redisSteps++;
                st.ledger.apply(call, expected, clock.now());
                note(call, expected);
                if (['claim', 'commit', 'commitError', 'retry'].includes(call.k))
                  st.replayable.push(call);
                if (call.k === 'takeOutbox' && (expected as string[]).length > 0)
                  st.unacked.push({ taskId: call.taskId, entries: expected as string[] });
              }
              st.step++;
            }
            // drain: once every retry is due and every lease has run out, the retries are promoted
            // and whatever was queued and not acknowledged is handed out again — nothing a
            // commit, a failure or a retry queued is ever lost
            clock.advance(Math.max(...OUTBOX_LEASES, 1_000));
            for (const taskId of TASKS) {
              for (const call of [
                { k: 'promote', taskId, max: 1_000 },
                { k: 'promote', taskId, max: 1_000 },
                { k: 'takeAck', taskId, max: 1_000, leaseMs: 1_000 },
                { k: 'takeAck', taskId, max: 1_000, leaseMs: 1_000 },
              ] satisfies Call[]) {
                const expected = await exec(st.model, call, clock);
                for (const [name, impl] of impls) {
                  expect(await exec(impl, call, clock), `${name} outbox at the end`).toEqual(
                    expected,
                  );
                }
                st.ledger.apply(call, expected, clock.now());
              }
            }
            expect(st.ledger.unacknowledged(), 'queued and never acknowledged').toEqual([]);
            for (const [k, v] of Object.entries(st.ledger.stats))
              stats[k as keyof typeof stats] += v;
          } finally {
            await backend.close();
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
    if (redis) expect(redisSteps).toBeGreaterThan(NUM_RUNS);
    // the runs reached every code of every transition
    const codes = Object.fromEntries([...seen].map(([k, v]) => [k, [...v].sort()]));
    expect(codes).toEqual({
      claim: [0, 1, 2, 3, 4],
      commit: [0, 1, 2, 3],
      commitError: [0, 1, 2],
      recover: [0, 1, 2],
      renew: [0, 1],
      decide: [0, 1, 2, 3],
      retry: [0, 1, 2],
      terminate: [0, 1],
      terminated: [0, 1, 2],
      fallback: [0, 1],
    });
    // and the outbox, retry, index and lock cases happened (counted over all runs)
    for (const [k, v] of Object.entries(stats))
      expect(v, `runs that reached ${k}`).toBeGreaterThan(0);
  });
});
