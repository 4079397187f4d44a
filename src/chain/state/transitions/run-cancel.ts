/**
 * `chain_run_cancel`: cancels a running run — every later claim of one of its nodes is refused
 * (`ChainStateStore.runCancel`). Idempotent.
 */
import { RunCancelCode } from '../types.js';
import { readRun } from '../run-record.js';
import { defineTransition } from '../transition.js';

/** Input: the run. @internal */
export interface RunCancelInput {
  /** The task. */
  taskId: string;
  /** The run. */
  runId: string;
}

/** Result of a cancel. */
type RunCancelResult = (typeof RunCancelCode)[keyof typeof RunCancelCode];

/** chain_run_cancel. @internal */
export const runCancel = defineTransition({
  script: 'chain_run_cancel',
  keys: (k, { taskId, runId }: RunCancelInput) => ({ run: k.run(taskId, runId) }),
  redisKeys: (keys) => [keys.run],
  args: (_input, ctx) => [ctx.now, ctx.finishedTtlMs],
  decode: (reply) => reply.code as RunCancelResult,
  runs: (input) => [input],
  local(store, keys, { taskId, runId }, ctx): RunCancelResult {
    const now = store.now();
    const rec = readRun(store, keys.run);
    if (!rec) return RunCancelCode.NOT_FOUND;
    if (rec.state !== 'running') return RunCancelCode.ALREADY_FINISHED;
    // write
    rec.state = 'cancelled';
    rec.finished = now;
    rec.updated = now;
    rec.expires = now + ctx.finishedTtlMs;
    store.set(keys.run, JSON.stringify(rec), ctx.finishedTtlMs);
    ctx.finished(taskId, runId);
    return RunCancelCode.CANCELLED;
  },
});
