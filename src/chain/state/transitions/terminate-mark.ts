/**
 * `etm_terminate_mark`: marks a task (no module) or one of its modules terminated, idempotently
 * (`ChainStateStore.terminateMark`). On Redis the run's record gets `x = 1` with it, so the
 * claims of the run check the marks (a run record without `x` has none); the local twin keeps
 * no such flag (its claims always check the marks: reads cost nothing there).
 */
import { TerminateCode } from '../types.js';
import { defineTransition } from '../transition.js';

/** Input: the run of a task, the module (none: the task's run itself) and the reason. @internal */
export interface TerminateMarkInput {
  /** The task. */
  taskId: string;
  /** The run. */
  runId: string;
  /** The module to terminate; undefined terminates the task. */
  moduleId: string | undefined;
  /** Why (kept with the mark). */
  reason: string;
}

/** Result of a terminate mark. */
type TerminateResult = (typeof TerminateCode)[keyof typeof TerminateCode];

/** etm_terminate_mark. @internal */
export const terminateMark = defineTransition({
  script: 'etm_terminate_mark',
  keys: (k, { taskId, runId, moduleId }: TerminateMarkInput) => ({
    mark:
      moduleId === undefined
        ? k.terminateTask(taskId, runId)
        : k.terminateModule(taskId, runId, moduleId),
    /** The run's record: on Redis it learns that a mark may exist (its claims look for marks). */
    run: k.run(taskId, runId),
  }),
  redisKeys: (keys) => [keys.mark, keys.run],
  args: (input, ctx) => [input.reason, ctx.ttlMs],
  decode: (reply) => reply.code as TerminateResult,
  local: (store, keys, { reason }, ctx): TerminateResult =>
    store.setNX(keys.mark, reason, ctx.ttlMs)
      ? TerminateCode.TERMINATED
      : TerminateCode.ALREADY_TERMINATED,
});
