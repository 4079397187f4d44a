/**
 * The chain state machine in TypeScript over the in-process store. Every transition runs
 * synchronously from its first read to its last write, so it is atomic within the process —
 * the same guarantee a Lua script gives on Redis. Codes match `RedisChainState` exactly.
 */
import { MocraError, ErrorCode } from '../../errors.js';
import { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { LocalBackend } from '../../store/local-backend.js';
import type { LocalStore } from '../../store/local-store.js';
import {
  CHAIN_SCHEMA_VERSION,
  ClaimCode,
  CommitCode,
  CommitErrorCode,
  FallbackCode,
  RecoverCode,
  ReorderCode,
  RetryScheduleCode,
  TerminateCode,
  TerminatedCode,
  ThresholdCode,
  type ChainStateStore,
  type TerminatedResult,
  type ClaimInput,
  type ClaimResult,
  type CommitErrorInput,
  type CommitSuccessInput,
  type NodeAddress,
  type RetryScheduleInput,
  type ThresholdInput,
  type ThresholdResult,
} from './types.js';

interface NodeRecord {
  status: 'pending' | 'processing' | 'done' | 'failed';
  owner: string;
  version: number;
  leaseUntil: number;
  epoch: number;
  schema: number;
}

/** Options shared by both chain state implementations. */
export interface ChainStateOptions {
  /** Key layout. @defaultValue new ChainKeyBuilder() */
  keys?: ChainKeyBuilder;
  /** TTL of every state key, in ms. @defaultValue 7 days */
  stateTtlMs?: number;
}

const DAY = 86_400_000;

/**
 * {@link ChainStateStore} on a {@link LocalBackend} (single-node mode).
 *
 * @example
 * ```ts
 * const state = new LocalChainState(new LocalBackend());
 * const claim = await state.claim({ node, owner: 'w1', leaseMs: 30_000, epoch: 0, root: true });
 * ```
 */
export class LocalChainState implements ChainStateStore {
  readonly #s: LocalStore;
  readonly #p: string;
  readonly #keys: ChainKeyBuilder;
  readonly #ttl: number;

  constructor(backend: LocalBackend, options: ChainStateOptions = {}) {
    this.#s = backend.store;
    this.#p = backend.keyPrefix;
    this.#keys = options.keys ?? new ChainKeyBuilder();
    this.#ttl = options.stateTtlMs ?? 7 * DAY;
  }

  async claim(input: ClaimInput): Promise<ClaimResult> {
    const { node, owner, leaseMs, epoch, root } = input;
    const now = this.#s.now();
    const result = (
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
    if (this.#terminated(node.taskId, node.moduleId))
      return result(ClaimCode.STALE_STEP, 0, 0, 'terminated');
    const key = this.#k(this.#keys.ptm(node.taskId, node));
    let rec = this.#read(key);
    if (!rec) {
      if (!root) return result(ClaimCode.OUT_OF_ORDER);
      rec = {
        status: 'pending',
        owner: '',
        version: 0,
        leaseUntil: 0,
        epoch: 0,
        schema: CHAIN_SCHEMA_VERSION,
      };
    }
    if (rec.status === 'done') return result(ClaimCode.DUPLICATE_DONE, rec.version);
    if (epoch < rec.epoch) return result(ClaimCode.STALE_STEP, rec.version, 0, 'old_epoch');
    if (epoch > rec.epoch) return result(ClaimCode.OUT_OF_ORDER, rec.version);
    if (rec.status === 'failed') return result(ClaimCode.STALE_STEP, rec.version, 0, 'failed');
    if (rec.status === 'processing' && rec.leaseUntil > now) {
      if (rec.owner === owner) return result(ClaimCode.EXECUTE, rec.version, rec.leaseUntil); // replay
      return result(ClaimCode.LOCKED_BY_OTHER, rec.version, rec.leaseUntil);
    }
    rec.status = 'processing';
    rec.owner = owner;
    rec.version += 1;
    rec.leaseUntil = now + leaseMs;
    this.#write(key, rec);
    const leases = this.#k(this.#keys.leases(node.taskId));
    this.#s.zadd(leases, rec.leaseUntil, this.#keys.ptmKey(node));
    this.#s.expire(leases, this.#ttl);
    return result(ClaimCode.EXECUTE, rec.version, rec.leaseUntil);
  }

  async commitSuccess(
    input: CommitSuccessInput,
  ): Promise<(typeof CommitCode)[keyof typeof CommitCode]> {
    const { node, owner, version, successors, items } = input;
    const key = this.#k(this.#keys.ptm(node.taskId, node));
    const rec = this.#read(key);
    if (!rec) return CommitCode.FENCING_REJECT;
    if (rec.status === 'done')
      return rec.version === version && rec.owner === owner
        ? CommitCode.ALREADY_COMMITTED
        : CommitCode.FENCING_REJECT;
    if (rec.owner !== owner || rec.version !== version) return CommitCode.FENCING_REJECT;
    if (rec.status !== 'processing') return CommitCode.CAS_CONFLICT;
    const gate = this.#k(this.#keys.advanceGate(node.taskId, node));
    if (this.#s.exists(gate)) return CommitCode.CAS_CONFLICT;
    // every check passed: write
    rec.status = 'done';
    this.#write(key, rec);
    this.#s.set(gate, String(version), this.#ttl);
    const reorderKey = this.#k(this.#keys.reorderBuffer(node.taskId, node.runId, node.moduleId));
    const buffered = this.#readMap(reorderKey);
    let bufferChanged = false;
    for (const s of successors) {
      const childKey = this.#k(this.#keys.ptm(s.node.taskId, s.node));
      const childId = this.#keys.ptmKey(s.node);
      if (childId in buffered) {
        delete buffered[childId];
        bufferChanged = true;
      }
      if (this.#s.exists(childKey)) continue;
      this.#write(childKey, {
        status: 'pending',
        owner: '',
        version: 0,
        leaseUntil: 0,
        epoch: 0,
        schema: CHAIN_SCHEMA_VERSION,
      });
      this.#outboxPush(node.taskId, s.message);
    }
    if (bufferChanged) this.#writeMap(reorderKey, buffered);
    for (const item of items) this.#outboxPush(node.taskId, item);
    this.#s.zrem(this.#k(this.#keys.leases(node.taskId)), this.#keys.ptmKey(node));
    return CommitCode.COMMIT_OK;
  }

  async commitError(
    input: CommitErrorInput,
  ): Promise<(typeof CommitErrorCode)[keyof typeof CommitErrorCode]> {
    const { node, owner, version, errorHash } = input;
    const key = this.#k(this.#keys.ptm(node.taskId, node));
    const rec = this.#read(key);
    if (!rec || rec.owner !== owner || rec.version !== version)
      return CommitErrorCode.FENCING_REJECT;
    const emit = this.#k(this.#keys.errorEmit(node.taskId, node, errorHash));
    if (this.#s.exists(emit)) return CommitErrorCode.ERROR_ALREADY_EMITTED;
    if (rec.status !== 'processing') return CommitErrorCode.FENCING_REJECT;
    rec.status = 'failed';
    this.#write(key, rec);
    this.#s.set(emit, String(version), this.#ttl);
    if (input.message !== undefined && input.message !== '')
      this.#outboxPush(node.taskId, input.message);
    this.#s.zrem(this.#k(this.#keys.leases(node.taskId)), this.#keys.ptmKey(node));
    return CommitErrorCode.ERROR_EMIT_OK;
  }

  async recoverZombie(node: NodeAddress): Promise<(typeof RecoverCode)[keyof typeof RecoverCode]> {
    return this.#recover(node.taskId, this.#keys.ptmKey(node));
  }

  async recoverExpired(taskId: string, max: number): Promise<number> {
    const leases = this.#k(this.#keys.leases(taskId));
    const ids = this.#s.zrangeByScore(leases, -Infinity, this.#s.now(), 0, max);
    let recovered = 0;
    for (const id of ids) if (this.#recover(taskId, id) === RecoverCode.RECOVERED) recovered++;
    return recovered;
  }

  #recover(taskId: string, ptmId: string): (typeof RecoverCode)[keyof typeof RecoverCode] {
    const key = this.#k(this.#keys.ptmById(taskId, ptmId));
    const leases = this.#k(this.#keys.leases(taskId));
    const rec = this.#read(key);
    if (!rec || rec.status !== 'processing') {
      this.#s.zrem(leases, ptmId);
      return RecoverCode.NOT_PROCESSING;
    }
    if (rec.leaseUntil > this.#s.now()) return RecoverCode.NOT_EXPIRED;
    rec.status = 'pending'; // owner and version kept: the old owner's late commit is a CAS_CONFLICT
    this.#write(key, rec);
    this.#s.zrem(leases, ptmId);
    return RecoverCode.RECOVERED;
  }

  async reorderEnqueue(
    node: NodeAddress,
    message: string,
  ): Promise<(typeof ReorderCode)[keyof typeof ReorderCode]> {
    const key = this.#k(this.#keys.reorderBuffer(node.taskId, node.runId, node.moduleId));
    const map = this.#readMap(key);
    const id = this.#keys.ptmKey(node);
    if (id in map) return ReorderCode.DUPLICATE_BUFFERED;
    map[id] = message;
    this.#writeMap(key, map);
    return ReorderCode.ENQUEUED;
  }

  async thresholdDecide(input: ThresholdInput): Promise<ThresholdResult> {
    const { taskId, moduleId, moduleThreshold, taskThreshold, retryAfterMs } = input;
    const mKey = this.#k(this.#keys.moduleThreshold(taskId, moduleId));
    const tKey = this.#k(this.#keys.taskThreshold(taskId));
    if (this.#s.exists(this.#k(this.#keys.terminateTask(taskId)))) {
      return {
        code: ThresholdCode.TERMINATE_TASK,
        moduleErrors: Number(this.#s.get(mKey) ?? 0),
        taskErrors: Number(this.#s.get(tKey) ?? 0),
      };
    }
    if (this.#s.exists(this.#k(this.#keys.terminateModule(taskId, moduleId)))) {
      return {
        code: ThresholdCode.TERMINATE_MODULE,
        moduleErrors: Number(this.#s.get(mKey) ?? 0),
        taskErrors: Number(this.#s.get(tKey) ?? 0),
      };
    }
    const markKey =
      input.failureId === undefined
        ? undefined
        : this.#k(this.#keys.thresholdMark(taskId, input.failureId));
    const seen = markKey === undefined ? null : this.#s.get(markKey);
    if (seen !== null) {
      return {
        code: Number(seen) as ThresholdResult['code'],
        moduleErrors: Number(this.#s.get(mKey) ?? 0),
        taskErrors: Number(this.#s.get(tKey) ?? 0),
      };
    }
    const m = this.#s.incr(mKey, 1);
    const t = this.#s.incr(tKey, 1);
    this.#s.expire(mKey, this.#ttl);
    this.#s.expire(tKey, this.#ttl);
    const code =
      m >= moduleThreshold
        ? ThresholdCode.TERMINATE_MODULE
        : t >= taskThreshold
          ? ThresholdCode.TERMINATE_TASK
          : retryAfterMs > 0
            ? ThresholdCode.RETRY_AFTER
            : ThresholdCode.CONTINUE;
    if (markKey !== undefined) this.#s.set(markKey, String(code), this.#ttl);
    return { code, moduleErrors: m, taskErrors: t };
  }

  async retrySchedule(
    input: RetryScheduleInput,
  ): Promise<(typeof RetryScheduleCode)[keyof typeof RetryScheduleCode]> {
    const { node, attempt, maxRetries, delayMs, message, allowed } = input;
    if (!allowed || this.#terminated(node.taskId, node.moduleId))
      return RetryScheduleCode.RETRY_NOT_ALLOWED;
    if (attempt > maxRetries) return RetryScheduleCode.MAX_RETRY_EXCEEDED;
    const key = this.#k(this.#keys.ptm(node.taskId, node));
    const rec = this.#read(key);
    if (!rec || rec.status === 'done') return RetryScheduleCode.RETRY_NOT_ALLOWED;
    if (rec.epoch >= attempt) return RetryScheduleCode.RETRY_SCHEDULED; // replay: already scheduled
    if (rec.status === 'processing' && rec.leaseUntil > this.#s.now())
      return RetryScheduleCode.RETRY_NOT_ALLOWED;
    rec.epoch = attempt;
    rec.status = 'pending';
    rec.owner = '';
    this.#write(key, rec);
    const z = this.#k(this.#keys.retryZset(node.taskId));
    this.#s.zadd(z, this.#s.now() + delayMs, message);
    this.#s.expire(z, this.#ttl);
    return RetryScheduleCode.RETRY_SCHEDULED;
  }

  async promoteDueRetries(taskId: string, max: number): Promise<string[]> {
    const z = this.#k(this.#keys.retryZset(taskId));
    const due = this.#s.zrangeByScore(z, -Infinity, this.#s.now(), 0, max);
    for (const m of due) {
      this.#s.zrem(z, m);
      this.#outboxPush(taskId, m);
    }
    return due;
  }

  async touchTask(taskId: string): Promise<void> {
    this.#s.zadd(this.#k(this.#keys.activeTasks()), Math.floor(this.#s.now()), taskId);
  }

  async activeTasks(windowMs: number, max: number): Promise<string[]> {
    const key = this.#k(this.#keys.activeTasks());
    const since = Math.floor(this.#s.now()) - windowMs;
    this.#s.zremRangeByScore(key, -Infinity, since - 1); // scores are whole ms: drops score < since
    const ids = this.#s.zrangeByScore(key, since, Infinity, 0, -1);
    return ids.reverse().slice(0, max);
  }

  async tryLock(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const key = this.#k(this.#keys.lock(name));
    if (this.#s.setNX(key, owner, ttlMs)) return true;
    if (this.#s.get(key) !== owner) return false;
    this.#s.expire(key, ttlMs);
    return true;
  }

  async terminateMark(
    taskId: string,
    moduleId: string | undefined,
    reason: string,
  ): Promise<(typeof TerminateCode)[keyof typeof TerminateCode]> {
    const key = this.#k(
      moduleId === undefined
        ? this.#keys.terminateTask(taskId)
        : this.#keys.terminateModule(taskId, moduleId),
    );
    return this.#s.setNX(key, reason, this.#ttl)
      ? TerminateCode.TERMINATED
      : TerminateCode.ALREADY_TERMINATED;
  }

  async terminated(taskId: string, moduleId: string): Promise<TerminatedResult> {
    const task = this.#s.get(this.#k(this.#keys.terminateTask(taskId)));
    if (task !== null) return { code: TerminatedCode.TASK_TERMINATED, reason: task };
    const mod = this.#s.get(this.#k(this.#keys.terminateModule(taskId, moduleId)));
    if (mod !== null) return { code: TerminatedCode.MODULE_TERMINATED, reason: mod };
    return { code: TerminatedCode.ACTIVE, reason: '' };
  }

  async tryAllowFallbackOnce(
    node: NodeAddress,
  ): Promise<(typeof FallbackCode)[keyof typeof FallbackCode]> {
    const key = this.#k(this.#keys.fallbackGate(node.taskId, node));
    return this.#s.setNX(key, '1', this.#ttl) ? FallbackCode.ALLOWED : FallbackCode.REFUSED;
  }

  async takeOutbox(taskId: string, max: number, leaseMs: number): Promise<string[]> {
    const now = this.#s.now();
    const leases = this.#k(this.#keys.outboxLeases(taskId));
    const out = this.#s.zrangeByScore(leases, -Infinity, now, 0, max);
    for (const e of out) this.#s.zadd(leases, now + leaseMs, e);
    const room = max - out.length;
    if (room > 0) {
      const z = this.#k(this.#keys.outbox(taskId));
      const fresh = this.#s.zrangeByScore(z, -Infinity, Infinity, 0, room);
      for (const e of fresh) {
        this.#s.zrem(z, e);
        const entry = e.slice(e.indexOf(':') + 1);
        this.#s.zadd(leases, now + leaseMs, entry);
        out.push(entry);
      }
    }
    if (out.length > 0) this.#s.expire(leases, this.#ttl);
    return out;
  }

  async ackOutbox(taskId: string, entries: string[]): Promise<number> {
    const leases = this.#k(this.#keys.outboxLeases(taskId));
    let removed = 0;
    for (const e of entries) removed += this.#s.zrem(leases, e);
    return removed;
  }

  #terminated(taskId: string, moduleId: string): boolean {
    return (
      this.#s.exists(this.#k(this.#keys.terminateTask(taskId))) ||
      this.#s.exists(this.#k(this.#keys.terminateModule(taskId, moduleId)))
    );
  }

  #outboxPush(taskId: string, entry: string): void {
    const z = this.#k(this.#keys.outbox(taskId));
    const seqKey = this.#k(this.#keys.outboxSequence(taskId));
    const seq = this.#s.incr(seqKey, 1);
    this.#s.expire(seqKey, this.#ttl);
    // members must be unique: prefix the sequence number (stripped by takeOutbox)
    this.#s.zadd(z, seq, `${seq}:${entry}`);
    this.#s.expire(z, this.#ttl);
  }

  #k(key: string): string {
    return this.#p + key;
  }

  #read(key: string): NodeRecord | null {
    const text = this.#s.get(key);
    if (text === null) return null;
    const rec = JSON.parse(text) as NodeRecord;
    if (rec.schema !== CHAIN_SCHEMA_VERSION) {
      throw new MocraError(
        ErrorCode.SCHEMA_MISMATCH,
        `node state has schema ${rec.schema}, this version reads ${CHAIN_SCHEMA_VERSION}`,
        {
          context: { key },
        },
      );
    }
    return rec;
  }

  #write(key: string, rec: NodeRecord): void {
    this.#s.set(key, JSON.stringify(rec), this.#ttl);
  }

  #readMap(key: string): Record<string, string> {
    const text = this.#s.get(key);
    return text === null ? {} : (JSON.parse(text) as Record<string, string>);
  }

  #writeMap(key: string, map: Record<string, string>): void {
    if (Object.keys(map).length === 0) this.#s.del(key);
    else this.#s.set(key, JSON.stringify(map), this.#ttl);
  }
}
