/**
 * `chain_run_start`: records a submitted run with its modules, running and waiting for its task
 * message to be dispatched (`ChainStateStore.runStart`).
 */
import { CHAIN_SCHEMA_VERSION } from '../types.js';
import { checkSortedSet } from '../node-record.js';
import { freshModule, type RunRecord } from '../run-record.js';
import { defineTransition } from '../transition.js';

/** Input: the run and its modules. @internal */
export interface RunStartInput {
  /** The task. */
  taskId: string;
  /** The run. */
  runId: string;
  /** Its modules (distinct). */
  modules: readonly string[];
}

/** A new run's record (local twins). @internal */
export function newRun(taskId: string, now: number, ttlMs: number): RunRecord {
  return {
    schema: CHAIN_SCHEMA_VERSION,
    taskId,
    state: 'running',
    started: now,
    updated: now,
    finished: 0,
    expires: now + ttlMs,
    ingress: true,
    open: 0,
    tm: 0,
    ob: 0,
    modules: {},
  };
}

/** chain_run_start. @internal */
export const runStart = defineTransition({
  script: 'chain_run_start',
  keys: (k, { taskId, runId, modules }: RunStartInput) => ({
    run: k.run(taskId, runId),
    taskRuns: k.taskRuns(taskId),
    /** Redis only: the run's terminate marks, already written ones set the record's `x`. */
    marks: [
      k.terminateTask(taskId, runId),
      ...[...new Set(modules)].map((m) => k.terminateModule(taskId, runId, m)),
    ],
  }),
  redisKeys: (keys) => [keys.run, keys.taskRuns, ...keys.marks],
  args: (input, ctx) => [
    ctx.now,
    CHAIN_SCHEMA_VERSION,
    ctx.ttlMs,
    input.taskId,
    input.runId,
    JSON.stringify([...new Set(input.modules)]),
  ],
  decode: (reply) => reply.code === 0,
  local(store, keys, { taskId, runId, modules }, ctx): boolean {
    const now = store.now();
    if (store.exists(keys.run)) return false;
    checkSortedSet(store, keys.taskRuns);
    // write
    const rec = newRun(taskId, now, ctx.ttlMs);
    for (const m of new Set(modules)) rec.modules[m] = freshModule();
    rec.open = Object.keys(rec.modules).length;
    store.set(keys.run, JSON.stringify(rec), ctx.ttlMs);
    store.zadd(keys.taskRuns, now, runId);
    store.expire(keys.taskRuns, ctx.ttlMs);
    return true;
  },
});
