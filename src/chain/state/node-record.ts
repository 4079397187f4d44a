/**
 * The node record and the outbox as the local twins store them (one JSON string per node, the
 * outbox as a sorted set by sequence number), and the reads and writes the twins share.
 * Redis keeps the same fields in a hash and the outbox in a list; see docs/chain-protocol.md.
 */
import { ErrorCode, MocraError } from '../../errors.js';
import type { SyncStore } from './sync-store.js';
import { CHAIN_SCHEMA_VERSION } from './types.js';

/** The state of one node. @internal */
export interface NodeRecord {
  status: 'pending' | 'processing' | 'done' | 'failed';
  owner: string;
  version: number;
  leaseUntil: number;
  epoch: number;
  schema: number;
  /** Counted as queued in its run (created by a commit or a retry, not claimed since). */
  queued?: boolean;
  /** Counted as failed for good in its run. */
  final?: boolean;
}

/** A node created by its parent's commit (or a new root, before its claim). @internal */
export function freshNode(): NodeRecord {
  return {
    status: 'pending',
    owner: '',
    version: 0,
    leaseUntil: 0,
    epoch: 0,
    schema: CHAIN_SCHEMA_VERSION,
  };
}

/** A node created by its parent's commit, counted as queued in its run. @internal */
export function queuedNode(): NodeRecord {
  // freshNode()'s fields, in its order, then `queued`
  return {
    status: 'pending',
    owner: '',
    version: 0,
    leaseUntil: 0,
    epoch: 0,
    schema: CHAIN_SCHEMA_VERSION,
    queued: true,
  };
}

/** The record without its `queued` field, every other field in its order. @internal */
export function withoutQueued(rec: NodeRecord): NodeRecord {
  const out: Record<string, unknown> = {};
  for (const field in rec) if (field !== 'queued') out[field] = rec[field as keyof NodeRecord];
  return out as unknown as NodeRecord;
}

/**
 * Reads a node record; null when missing.
 * @throws MocraError `SCHEMA_MISMATCH` when another schema version wrote it.
 * @internal
 */
export function readNode(store: SyncStore, key: string): NodeRecord | null {
  let rec: NodeRecord;
  if (store.getJson !== undefined) {
    // the store keeps the record decoded: a copy the twin may change (every field is a primitive)
    const shared = store.getJson(key) as NodeRecord | undefined;
    if (shared === undefined) return null;
    rec = typeof shared === 'object' && shared !== null ? { ...shared } : shared;
  } else {
    const text = store.get(key);
    if (text === null) return null;
    rec = JSON.parse(text) as NodeRecord;
  }
  if (rec.schema !== CHAIN_SCHEMA_VERSION) {
    throw new MocraError(
      ErrorCode.SCHEMA_MISMATCH,
      `node state has schema ${rec.schema}, this version reads ${CHAIN_SCHEMA_VERSION}`,
      { context: { key } },
    );
  }
  return rec;
}

/** Writes a node record with the TTL; the record is the store's afterwards (not changed again). @internal */
export function writeNode(store: SyncStore, key: string, rec: NodeRecord, ttlMs: number): void {
  if (store.setJson !== undefined) store.setJson(key, rec, ttlMs);
  else store.set(key, JSON.stringify(rec), ttlMs);
}

/**
 * The part of a task's key after its hash tag (`ptm:<id>`, `error:emit:…`): what a run's key
 * index holds, so its clean-up can name the key again with `ChainKeyBuilder.taskKey`.
 * @internal
 */
export function keySuffix(key: string): string {
  return key.slice(key.lastIndexOf('}:') + 2);
}

/**
 * Reads `key` as a sorted set (an empty range), so that a key of another type throws here, in
 * the read phase, rather than at a write after the transition's first one.
 * @internal
 */
export function checkSortedSet(store: SyncStore, key: string): void {
  store.zrangeByScore(key, 1, 0);
}

/** Whether the task's or the module's terminate mark is set. @internal */
export function isTerminated(store: SyncStore, taskMark: string, moduleMark: string): boolean {
  return store.exists(taskMark) || store.exists(moduleMark);
}

/**
 * The local outbox: a sorted set whose members are `<seq>:<entry>` scored by `seq`, so equal
 * entries stay distinct and take order is commit order. Read the sequence first
 * ({@link readOutboxSequence}), then {@link pushOutbox} once all checks passed.
 * @internal
 */
export interface OutboxKeys {
  /** The outbox (sorted set). */
  readonly outbox: string;
  /** Its sequence counter (string). */
  readonly outboxSeq: string;
}

/**
 * The outbox's last sequence number, after checking the outbox's type (reads: call it before
 * the first write).
 * @throws MocraError `SCRIPT_FAILED` when the counter is not an integer.
 * @internal
 */
export function readOutboxSequence(store: SyncStore, keys: OutboxKeys): number {
  checkSortedSet(store, keys.outbox);
  const text = store.get(keys.outboxSeq);
  const seq = text === null ? 0 : Number(text);
  if (!Number.isSafeInteger(seq)) {
    throw new MocraError(ErrorCode.SCRIPT_FAILED, 'the outbox sequence is not an integer', {
      context: { key: keys.outboxSeq },
    });
  }
  return seq;
}

/** Appends entries after sequence `seq` (from {@link readOutboxSequence}); writes only. @internal */
export function pushOutbox(
  store: SyncStore,
  keys: OutboxKeys,
  seq: number,
  entries: readonly string[],
  ttlMs: number,
): void {
  if (entries.length === 0) return;
  for (const entry of entries) {
    seq += 1;
    store.zadd(keys.outbox, seq, `${seq}:${entry}`);
  }
  store.set(keys.outboxSeq, String(seq), ttlMs);
  store.expire(keys.outbox, ttlMs);
}

/** The entry of an outbox member (without its `<seq>:`). @internal */
export function outboxEntry(member: string): string {
  return member.slice(member.indexOf(':') + 1);
}
