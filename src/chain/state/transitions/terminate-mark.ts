/**
 * `etm_terminate_mark`: marks a task (no module) or one of its modules terminated, idempotently
 * (`ChainStateStore.terminateMark`).
 */
import { TerminateCode } from '../types.js';
import { defineTransition } from '../transition.js';

/** Input: the task, the module (none: the task itself) and the reason. @internal */
export interface TerminateMarkInput {
  /** The task. */
  taskId: string;
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
  keys: (k, { taskId, moduleId }: TerminateMarkInput) => ({
    mark: moduleId === undefined ? k.terminateTask(taskId) : k.terminateModule(taskId, moduleId),
  }),
  redisKeys: (keys) => [keys.mark],
  args: (input, ctx) => [input.reason, ctx.ttlMs],
  decode: (reply) => reply.code as TerminateResult,
  local: (store, keys, { reason }, ctx): TerminateResult =>
    store.setNX(keys.mark, reason, ctx.ttlMs)
      ? TerminateCode.TERMINATED
      : TerminateCode.ALREADY_TERMINATED,
});
