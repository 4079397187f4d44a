/**
 * `chain_run_dispatch`: the task message of a run was dispatched — the first node of each
 * running module is counted queued, the other modules are settled; once per run
 * (`ChainStateStore.runDispatch`).
 */
import { CHAIN_SCHEMA_VERSION, type RunDispatchModule } from '../types.js';
import { checkSortedSet } from '../node-record.js';
import { freshModule, readRun, writeRun } from '../run-record.js';
import { defineTransition } from '../transition.js';
import { newRun } from './run-start.js';

/** Input: the run and its modules as dispatched. @internal */
export interface RunDispatchInput {
  /** The task. */
  taskId: string;
  /** The run. */
  runId: string;
  /** Its modules (distinct). */
  modules: readonly RunDispatchModule[];
}

/** chain_run_dispatch. @internal */
export const runDispatch = defineTransition({
  script: 'chain_run_dispatch',
  keys: (k, { taskId, runId, modules }: RunDispatchInput) => ({
    run: k.run(taskId, runId),
    taskRuns: k.taskRuns(taskId),
    /**
     * Redis only: the run's terminate marks (the task's, then each module's in the order of
     * `modules`); a record the dispatch creates, or a module it adds, sets the record's `x` when
     * one was written before. The local twin's claims always read the marks.
     */
    marks: [
      k.terminateTask(taskId, runId),
      ...modules.map((m) => k.terminateModule(taskId, runId, m.moduleId)),
    ],
  }),
  redisKeys: (keys) => [keys.run, keys.taskRuns, ...keys.marks],
  args: (input, ctx) => [
    ctx.now,
    CHAIN_SCHEMA_VERSION,
    ctx.ttlMs,
    ctx.finishedTtlMs,
    input.taskId,
    input.runId,
    JSON.stringify(input.modules.map((m) => [m.moduleId, m.state])),
  ],
  decode: (reply) => reply.code,
  runs: (input) => [input],
  local(store, keys, { taskId, runId, modules }, ctx): number {
    const now = store.now();
    const existing = readRun(store, keys.run);
    if (existing && !existing.ingress) return 1;
    checkSortedSet(store, keys.taskRuns);
    // write
    const rec = existing ?? newRun(taskId, now, ctx.ttlMs);
    rec.ingress = false;
    rec.open = 0;
    rec.tm = 0;
    for (const { moduleId, state } of modules) {
      const mod = (rec.modules[moduleId] ??= freshModule());
      mod.s = state;
      if (state === 'running') {
        mod.q = 1;
        rec.open += 1;
      } else {
        rec.tm += 1;
      }
    }
    if (!existing) {
      store.zadd(keys.taskRuns, now, runId);
      store.expire(keys.taskRuns, ctx.ttlMs);
    }
    const w = { key: keys.run, rec, now, finishedTtlMs: ctx.finishedTtlMs };
    if (writeRun(store, w, {})) ctx.finished(taskId, runId);
    return 0;
  },
});
