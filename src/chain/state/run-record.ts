/**
 * The run record as the local twins store it (one JSON string per run) and the counting the
 * twins share; `lua/_run.lua` is the same on Redis (a hash). A transition reads the run with
 * {@link readRun} before its first write and counts with {@link writeRun} after its checks.
 */
import { ErrorCode, MocraError } from '../../errors.js';
import type { SyncStore } from './sync-store.js';
import { CHAIN_SCHEMA_VERSION, type RunModuleState, type RunRecordState } from './types.js';

/** The counters of one module of a run. @internal */
export interface RunModuleRecord {
  /** State: running until settled. */
  s: RunModuleState;
  /** Nodes queued (created, not claimed). */
  q: number;
  /** Nodes running (claimed, or failed with their error not yet decided). */
  r: number;
  /** Nodes done. */
  d: number;
  /** Nodes failed for good. */
  f: number;
  /** Items committed. */
  i: number;
  /** Failures recorded. */
  e: number;
}

/** A run's record. @internal */
export interface RunRecord {
  schema: number;
  taskId: string;
  state: RunRecordState;
  started: number;
  updated: number;
  finished: number;
  /** When the record expires (ms, store time): a local write keeps the TTL it had. */
  expires: number;
  /** True until the task message dispatched the modules. */
  ingress: boolean;
  /** Modules not settled. */
  open: number;
  /** Modules settled other than done (terminated, skipped). */
  tm: number;
  /** Items waiting in the outbox. */
  ob: number;
  modules: Record<string, RunModuleRecord>;
}

/** A module with nothing counted yet. @internal */
export function freshModule(s: RunModuleState = 'running'): RunModuleRecord {
  return { s, q: 0, r: 0, d: 0, f: 0, i: 0, e: 0 };
}

/**
 * Reads a run record; null when missing.
 * @throws MocraError `SCHEMA_MISMATCH` when another schema version wrote it.
 * @internal
 */
export function readRun(store: SyncStore, key: string): RunRecord | null {
  if (store.getJson !== undefined) {
    // the store keeps the record decoded: check it, then copy what the twin may change
    const shared = store.getJson(key) as RunRecord | undefined;
    if (shared === undefined) return null;
    checkSchema(shared, key);
    return copyRun(shared);
  }
  const text = store.get(key);
  if (text === null) return null;
  const rec = JSON.parse(text) as RunRecord;
  checkSchema(rec, key);
  return rec;
}

function checkSchema(rec: RunRecord, key: string): void {
  if (rec.schema !== CHAIN_SCHEMA_VERSION) {
    throw new MocraError(
      ErrorCode.SCHEMA_MISMATCH,
      `run state has schema ${rec.schema}, this version reads ${CHAIN_SCHEMA_VERSION}`,
      { context: { key } },
    );
  }
}

/** A copy of a run record as its JSON would decode again (every field, in the same order). */
function copyRun(rec: RunRecord): RunRecord {
  const copy = { ...rec };
  const modules = rec.modules;
  if (modules !== null && typeof modules === 'object') {
    const mods = { ...modules };
    for (const m in mods) {
      const mod = mods[m];
      if (mod !== null && typeof mod === 'object') mods[m] = { ...mod };
    }
    copy.modules = mods;
  }
  return copy;
}

/** A counter of a module, or the run's `ob`. @internal */
export type RunCounter = 'q' | 'r' | 'd' | 'f' | 'i' | 'e' | 'ob';

/** What a twin changes in a run; applied by {@link writeRun}. @internal */
export interface RunChange {
  /** The module the counters belong to (none: run-level only). */
  module?: string;
  /** Deltas by counter. */
  add?: Partial<Record<RunCounter, number>>;
  /** Modules to settle as terminated (those still running). */
  terminate?: readonly string[];
}

/** Where a twin writes a run: its key, its TTL once finished, and what it read. @internal */
export interface RunWrite {
  readonly key: string;
  readonly rec: RunRecord;
  readonly now: number;
  readonly finishedTtlMs: number;
}

/**
 * Applies a change to a run read before (the twin's checks passed): counts, settles the module
 * when nothing is queued or running, finishes the run when every module is settled and no item
 * waits in the outbox (TTL then `finishedTtlMs`). Writes only. Returns true when this call
 * finished the run. The record is the store's afterwards: the twin changes it no more.
 * @internal
 */
export function writeRun(store: SyncStore, w: RunWrite, change: RunChange): boolean {
  const rec = w.rec;
  if (change.terminate !== undefined) {
    for (const m of change.terminate) {
      const mod = (rec.modules[m] ??= freshModule());
      if (mod.s !== 'running') continue;
      mod.s = 'terminated';
      rec.open -= 1;
      rec.tm += 1;
    }
  }
  const m = change.module;
  const add = change.add;
  if (add !== undefined) {
    if (add.ob !== undefined) rec.ob += add.ob;
    if (m !== undefined) {
      const mod = (rec.modules[m] ??= freshModule());
      // the counters in the order Object.entries gave them before (no counter reads another)
      for (const counter in add) {
        if (counter !== 'ob')
          mod[counter as Exclude<RunCounter, 'ob'>] += add[counter as RunCounter]!;
      }
    }
  }
  if (m !== undefined) {
    const mod = (rec.modules[m] ??= freshModule());
    if (mod.s === 'running' && !rec.ingress && mod.q <= 0 && mod.r <= 0) {
      mod.s = 'done';
      rec.open -= 1;
    }
  }
  rec.updated = w.now;
  let finished = false;
  if (rec.state === 'running' && !rec.ingress && rec.open <= 0 && rec.ob <= 0) {
    finished = true;
    rec.state = rec.tm > 0 ? 'terminated' : 'done';
    rec.finished = w.now;
  }
  // a finished run keeps its record for finishedTtlMs; else the TTL it was given at its start
  if (finished) rec.expires = w.now + w.finishedTtlMs;
  const ttlMs = Math.max(1, rec.expires - w.now);
  // the record is the store's from here: the twin no longer changes it
  if (store.setJson !== undefined) store.setJson(w.key, rec, ttlMs);
  else store.set(w.key, JSON.stringify(rec), ttlMs);
  return finished;
}
