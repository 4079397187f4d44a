/**
 * Model-based test of the chain state machine (DESIGN §3.2, §3.3): random sequences of
 * transitions — claims by three owners, commits, replays (duplicate deliveries), out-of-order
 * deliveries, lease expiry and zombie recovery, thresholds, retries, terminate marks, the
 * fallback gate and the outbox — run in lock-step against a small reference model written
 * here, against LocalChainState and against RedisChainState on a real Redis. Every transition
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
  type NodeAddress,
  type RetryScheduleInput,
  type Successor,
  type ThresholdInput,
  type TerminatedResult,
  type ThresholdResult,
} from '../../../src/chain/state/index.js';
import { ManualClock } from '../../../src/internal/clock.js';
import { ChainKeyBuilder } from '../../../src/keys/chain-key-builder.js';
import { LocalBackend } from '../../../src/store/local-backend.js';
import { RedisBackend } from '../../../src/store/redis-backend.js';
import { redisUrl } from '../../helpers/redis.js';

// ---------------------------------------------------------------------------------------------
// The universe: 2 tasks x 2 modules, each a small tree of 5 nodes (b and a share the child ax).

const TASKS = ['t1', 't2'] as const;
const MODULES = ['m1', 'm2'] as const;
const OWNERS = ['w0', 'w1', 'w2'] as const;
const SHAPE = {
  root: { step: 0, prefix: '', children: ['a', 'b'] },
  a: { step: 1, prefix: 'GET /a', children: ['ax'] },
  b: { step: 1, prefix: 'GET /b', children: ['bx', 'ax'] },
  ax: { step: 2, prefix: 'GET /a/x', children: [] },
  bx: { step: 2, prefix: 'GET /b/x', children: [] },
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
  readonly #reorder = new Map<string, Map<string, string>>();
  readonly #retries = new Map<string, { score: number; member: string }[]>();
  readonly #outbox = new Map<string, string[]>();

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
    this.nodes.set(id, {
      status: 'processing',
      owner,
      version: rec.version + 1,
      leaseUntil: now + leaseMs,
      epoch: rec.epoch,
    });
    return r(0, rec.version + 1, now + leaseMs);
  }

  async commitSuccess({ node, owner, version, successors, items }: CommitSuccessInput) {
    const id = nodeId(node);
    const rec = this.nodes.get(id);
    if (!rec) return 1 as const;
    const same = rec.owner === owner && rec.version === version;
    if (rec.status === 'done') return same ? (3 as const) : (1 as const);
    if (!same) return 1 as const;
    if (rec.status !== 'processing' || this.#gates.has(id)) return 2 as const;
    rec.status = 'done';
    this.#gates.add(id);
    const buffer = this.#reorder.get(reorderId(node));
    const out = this.#list(this.#outbox, node.taskId);
    for (const s of successors) {
      const sid = nodeId(s.node);
      buffer?.delete(sid);
      if (this.nodes.has(sid)) continue;
      this.nodes.set(sid, fresh());
      out.push(s.message);
    }
    out.push(...items);
    return 0 as const;
  }

  async commitError({ node, owner, version, errorHash }: CommitErrorInput) {
    const id = nodeId(node);
    const rec = this.nodes.get(id);
    if (!rec || rec.owner !== owner || rec.version !== version) return 2 as const;
    if (this.#emitted.has(`${id}|${errorHash}`)) return 1 as const;
    if (rec.status !== 'processing') return 2 as const;
    rec.status = 'failed';
    this.#emitted.add(`${id}|${errorHash}`);
    return 0 as const;
  }

  async recoverZombie(node: NodeAddress) {
    const rec = this.nodes.get(nodeId(node));
    if (!rec || rec.status !== 'processing') return 2 as const;
    if (rec.leaseUntil > this.clock.now()) return 1 as const;
    rec.status = 'pending';
    return 0 as const;
  }

  async reorderEnqueue(node: NodeAddress, message: string) {
    const key = reorderId(node);
    const buffer = this.#reorder.get(key) ?? new Map<string, string>();
    this.#reorder.set(key, buffer);
    if (buffer.has(nodeId(node))) return 1 as const;
    buffer.set(nodeId(node), message);
    return 0 as const;
  }

  async thresholdDecide(input: ThresholdInput): Promise<ThresholdResult> {
    const mKey = `${input.taskId}|${input.moduleId}`;
    const tKey = input.taskId;
    const counts = () => ({
      moduleErrors: this.#counters.get(mKey) ?? 0,
      taskErrors: this.#counters.get(tKey) ?? 0,
    });
    if (this.#terminated.has(`task|${input.taskId}`)) return { code: 3, ...counts() };
    if (this.#terminated.has(`module|${mKey}`)) return { code: 2, ...counts() };
    this.#counters.set(mKey, counts().moduleErrors + 1);
    this.#counters.set(tKey, counts().taskErrors + 1);
    const c = counts();
    const code =
      c.moduleErrors >= input.moduleThreshold
        ? 2
        : c.taskErrors >= input.taskThreshold
          ? 3
          : input.retryAfterMs > 0
            ? 1
            : 0;
    return { code, ...c };
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
    set.sort((x, y) =>
      x.score !== y.score
        ? x.score - y.score
        : x.member < y.member
          ? -1
          : x.member > y.member
            ? 1
            : 0,
    );
    this.#retries.set(node.taskId, set);
    return 0 as const;
  }

  async takeDueRetries(taskId: string, max: number): Promise<string[]> {
    const set = this.#list(this.#retries, taskId);
    const now = this.clock.now();
    const due = set.filter((e) => e.score <= now).slice(0, max);
    this.#retries.set(
      taskId,
      set.filter((e) => !due.includes(e)),
    );
    return due.map((e) => e.member);
  }

  async terminateMark(taskId: string, moduleId: string | undefined, reason: string) {
    const key = moduleId === undefined ? `task|${taskId}` : `module|${taskId}|${moduleId}`;
    if (this.#terminated.has(key)) return 1 as const;
    this.#terminated.set(key, reason);
    return 0 as const;
  }

  async terminated(taskId: string, moduleId: string): Promise<TerminatedResult> {
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

  async takeOutbox(taskId: string, max: number): Promise<string[]> {
    return this.#list(this.#outbox, taskId).splice(0, max);
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
const reorderId = (n: NodeAddress): string => `${n.taskId}|${n.runId}|${n.moduleId}`;

// ---------------------------------------------------------------------------------------------
// Concrete calls, and the ledger that checks the guarantees from results alone.

type Call =
  | { k: 'claim'; input: ClaimInput }
  | { k: 'commit'; input: CommitSuccessInput }
  | { k: 'commitError'; input: CommitErrorInput }
  | { k: 'recover'; node: NodeAddress }
  | { k: 'reorder'; node: NodeAddress; message: string }
  | { k: 'decide'; input: ThresholdInput }
  | { k: 'retry'; input: RetryScheduleInput }
  | { k: 'takeRetries'; taskId: string; max: number }
  | { k: 'terminate'; taskId: string; moduleId: string | undefined; reason: string }
  | { k: 'terminated'; taskId: string; moduleId: string }
  | { k: 'fallback'; node: NodeAddress }
  | { k: 'takeOutbox'; taskId: string; max: number }
  | { k: 'advance'; ms: number };

async function exec(s: ChainStateStore, call: Call, clock: ManualClock): Promise<unknown> {
  switch (call.k) {
    case 'claim':
      return s.claim(call.input);
    case 'commit':
      return s.commitSuccess(call.input);
    case 'commitError':
      return s.commitError(call.input);
    case 'recover':
      return s.recoverZombie(call.node);
    case 'reorder':
      return s.reorderEnqueue(call.node, call.message);
    case 'decide':
      return s.thresholdDecide(call.input);
    case 'retry':
      return s.retrySchedule(call.input);
    case 'takeRetries':
      return s.takeDueRetries(call.taskId, call.max);
    case 'terminate':
      return s.terminateMark(call.taskId, call.moduleId, call.reason);
    case 'terminated':
      return s.terminated(call.taskId, call.moduleId);
    case 'fallback':
      return s.tryAllowFallbackOnce(call.node);
    case 'takeOutbox':
      return s.takeOutbox(call.taskId, call.max);
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
  readonly #terminated = new Set<string>();
  readonly #decides = new Map<string, number>();
  readonly #expected = new Map<string, string[]>();
  readonly #takenSuccessors = new Set<string>();
  /** Every grant handed out, including superseded ones, for the tests to commit with. */
  readonly history: Grant[] = [];

  expectedOutbox(taskId: string): string[] {
    return this.#expected.get(taskId) ?? [];
  }

  apply(call: Call, result: unknown): void {
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
        if (result !== 0) return;
        const { node, owner, version } = call.input;
        const id = nodeId(node);
        expect(this.#committed.has(id), `node ${id} committed twice`).toBe(false);
        this.#committed.add(id);
        this.#checkFencing(id, owner, version);
        const out = this.#expected.get(node.taskId) ?? [];
        this.#expected.set(node.taskId, out);
        for (const s of call.input.successors) {
          const sid = nodeId(s.node);
          if (this.#exists.has(sid)) continue;
          this.#exists.add(sid);
          out.push(s.message);
        }
        out.push(...call.input.items);
        return;
      }
      case 'commitError': {
        if (result !== 0) return;
        const { node, owner, version, errorHash } = call.input;
        const key = `${nodeId(node)}|${errorHash}`;
        expect(this.#errors.has(key), `failure ${key} emitted twice`).toBe(false);
        this.#errors.add(key);
        this.#checkFencing(nodeId(node), owner, version);
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
        return;
      }
      case 'takeOutbox': {
        const taken = result as string[];
        const expected = this.#expected.get(call.taskId) ?? [];
        expect(taken, 'the outbox holds exactly what the commits produced').toEqual(
          expected.splice(0, call.max),
        );
        for (const entry of taken) {
          if (!entry.startsWith('ptm:')) continue;
          expect(this.#takenSuccessors.has(entry), `successor ${entry} queued twice`).toBe(false);
          this.#takenSuccessors.add(entry);
        }
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
  | { t: 'commit'; grant: number; mask: number; dup: boolean; items: number; tamper: Tamper }
  | { t: 'commitError'; grant: number; hash: number; tamper: Tamper }
  | { t: 'replay'; back: number }
  | { t: 'early'; node: NodeRef; owner: number }
  | { t: 'reorder'; node: NodeRef; msg: number }
  | { t: 'advance'; ms: number }
  | { t: 'zombie'; grant: number | null; node: NodeRef; expire: boolean }
  | { t: 'decide'; task: number; module: number; mt: number; tt: number; ra: number }
  | {
      t: 'retry';
      node: NodeRef;
      attempt: 'next' | 'same' | number;
      max: number;
      delay: number;
      allowed: boolean;
    }
  | { t: 'takeRetries'; task: number; max: number }
  | { t: 'terminate'; task: number; module: number | null; reason: number }
  | { t: 'terminated'; task: number; module: number }
  | { t: 'fallback'; node: NodeRef }
  | { t: 'takeOutbox'; task: number; max: number };
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
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('reorder' as const), node: nodeRef, msg: fc.nat(1) }),
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
      node: nodeRef,
      attempt: fc.oneof(fc.constant('next' as const), fc.constant('same' as const), fc.nat(3)),
      max: fc.nat(3),
      delay: fc.constantFrom(0, 100, 1_000),
      allowed: fc.constantFrom(true, true, true, false),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('takeRetries' as const),
      task: fc.nat(TASKS.length - 1),
      max: fc.nat(3),
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
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('takeOutbox' as const),
      task: fc.nat(TASKS.length - 1),
      max: fc.nat(4),
    }),
  },
);

interface RunState {
  model: ModelChainState;
  ledger: Ledger;
  /** Calls that a duplicate delivery may repeat verbatim. */
  replayable: Call[];
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
        .map((c) => {
          const child = address(ref, c);
          return { node: child, message: successorMessage(child) };
        });
      if (op.dup && successors.length > 0) successors.push({ ...successors[0]! });
      const items = Array.from({ length: op.items }, (_, j) => `item:${st.step}:${j}`);
      return [{ k: 'commit', input: { node: g.node, ...fenced(g, op.tamper), successors, items } }];
    }
    case 'commitError': {
      const g = pickGrant(op.grant);
      return [
        {
          k: 'commitError',
          input: { node: g.node, ...fenced(g, op.tamper), errorHash: `e${op.hash}` },
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
        { k: 'reorder', node, message: `early:${nodeId(node)}` },
      ];
    }
    case 'reorder': {
      const node = address(op.node);
      return [{ k: 'reorder', node, message: `early${op.msg}:${nodeId(node)}` }];
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
            moduleId: MODULES[op.module]!,
            moduleThreshold: op.mt,
            taskThreshold: op.tt,
            retryAfterMs: op.ra,
          },
        },
      ];
    case 'retry': {
      const node = address(op.node);
      const cur = model.nodes.get(nodeId(node))?.epoch ?? 0;
      const attempt = op.attempt === 'next' ? cur + 1 : op.attempt === 'same' ? cur : op.attempt;
      return [
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
    case 'takeRetries':
      return [{ k: 'takeRetries', taskId: TASKS[op.task]!, max: op.max }];
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
    case 'takeOutbox':
      return [{ k: 'takeOutbox', taskId: TASKS[op.task]!, max: op.max }];
  }
}

// ---------------------------------------------------------------------------------------------

const url = redisUrl();
const NUM_RUNS = Number(process.env.MOCRA_MODEL_RUNS ?? 800);

describe('chain state machine: model vs LocalChainState vs RedisChainState', () => {
  let redis: RedisBackend | null = null;
  const testPrefix = `mocra-test:${randomBytes(6).toString('hex')}:`;
  let runSeq = 0;

  beforeAll(async () => {
    if (!url) {
      console.warn('state-model property test: no Redis available, checking LocalChainState only');
      return;
    }
    redis = new RedisBackend({ redis: url, keyPrefix: testPrefix });
    await redis.connect();
  });
  afterAll(async () => {
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
      if (code === undefined) return;
      const codes = seen.get(call.k) ?? new Set<number>();
      seen.set(call.k, codes.add(code));
    };
    await fc.assert(
      fc.asyncProperty(
        // a small clock and a realistic epoch-ms clock (Lua numbers must keep full precision)
        fc.constantFrom(1_000_000, 1_753_000_000_000),
        fc.array(opArb, { minLength: 1, maxLength: 80, size: 'max' }),
        async (start, ops) => {
          const clock = new ManualClock(start);
          const backend = new LocalBackend({ clock, sweepIntervalMs: 0 });
          const keys = new ChainKeyBuilder({ prefix: `run${runSeq++}` });
          const impls: [string, ChainStateStore][] = [
            ['local', new LocalChainState(backend, { keys })],
          ];
          if (redis) impls.push(['redis', new RedisChainState(redis, { keys, testClock: clock })]);
          const st: RunState = {
            model: new ModelChainState(clock),
            ledger: new Ledger(),
            replayable: [],
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
                if (impls.length > 1) redisSteps++;
                st.ledger.apply(call, expected);
                note(call, expected);
                if (['claim', 'commit', 'commitError', 'retry', 'reorder'].includes(call.k))
                  st.replayable.push(call);
              }
              st.step++;
            }
            // drain: whatever the commits produced and nobody took is still in every outbox
            for (const taskId of TASKS) {
              const rest = st.ledger.expectedOutbox(taskId).slice();
              const call: Call = { k: 'takeOutbox', taskId, max: 1_000 };
              const expected = await exec(st.model, call, clock);
              expect(expected).toEqual(rest);
              for (const [name, impl] of impls) {
                expect(await exec(impl, call, clock), `${name} outbox at the end`).toEqual(
                  expected,
                );
              }
              st.ledger.apply(call, expected);
            }
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
      reorder: [0, 1],
      decide: [0, 1, 2, 3],
      retry: [0, 1, 2],
      terminate: [0, 1],
      terminated: [0, 1, 2],
      fallback: [0, 1],
    });
  });
});
