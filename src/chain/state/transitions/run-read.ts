/**
 * `chain_run_read`: a run's record (`ChainStateStore.runRead`); writes nothing.
 */
import { readRun, type RunModuleRecord } from '../run-record.js';
import { defineTransition } from '../transition.js';
import type { RunModuleSnapshot, RunRecordState, RunSnapshot } from '../types.js';

/** Input: the run. @internal */
export interface RunReadInput {
  /** The task. */
  taskId: string;
  /** The run. */
  runId: string;
}

/** A module's counters as the snapshot shows them. */
function moduleSnapshot(m: RunModuleRecord): RunModuleSnapshot {
  return {
    state: m.s,
    nodes: { queued: m.q, running: m.r, done: m.d, failed: m.f },
    items: m.i,
    errors: m.e,
  };
}

/** chain_run_read (read-only). @internal */
export const runRead = defineTransition({
  script: 'chain_run_read',
  keys: (k, { taskId, runId }: RunReadInput) => ({ run: k.run(taskId, runId) }),
  redisKeys: (keys) => [keys.run],
  args: () => [],
  decode: (reply): RunSnapshot | null => {
    if (reply.code !== 0) return null;
    const h = new Map<string, string>();
    for (let i = 0; i + 1 < reply.payload.length; i += 2)
      h.set(String(reply.payload[i]), String(reply.payload[i + 1]));
    const num = (field: string): number => Number(h.get(field) ?? 0);
    const modules: Record<string, RunModuleRecord> = {};
    let mods: unknown;
    try {
      mods = JSON.parse(h.get('mods') ?? '[]');
    } catch {
      mods = [];
    }
    for (const m of Array.isArray(mods) ? (mods as string[]) : []) {
      modules[m] = {
        s: (h.get(`s:${m}`) ?? 'running') as RunModuleRecord['s'],
        q: num(`q:${m}`),
        r: num(`r:${m}`),
        d: num(`d:${m}`),
        f: num(`f:${m}`),
        i: num(`i:${m}`),
        e: num(`e:${m}`),
      };
    }
    return snapshot(h.get('run') ?? '', h.get('task') ?? '', {
      state: (h.get('state') ?? 'running') as RunRecordState,
      started: num('started'),
      updated: num('updated'),
      finished: num('finished'),
      ob: num('ob'),
      modules,
    });
  },
  local(store, keys, { taskId, runId }): RunSnapshot | null {
    const rec = readRun(store, keys.run);
    return rec && snapshot(runId, taskId, rec);
  },
});

/** The snapshot of a record's fields. */
function snapshot(
  runId: string,
  taskId: string,
  rec: {
    state: RunRecordState;
    started: number;
    updated: number;
    finished: number;
    ob: number;
    modules: Record<string, RunModuleRecord>;
  },
): RunSnapshot {
  const modules: Record<string, RunModuleSnapshot> = {};
  for (const [id, m] of Object.entries(rec.modules)) modules[id] = moduleSnapshot(m);
  const out: RunSnapshot = {
    runId,
    taskId,
    state: rec.state,
    modules,
    itemsPending: rec.ob,
    startedAt: rec.started,
    updatedAt: rec.updated,
  };
  if (rec.finished > 0) out.finishedAt = rec.finished;
  return out;
}
