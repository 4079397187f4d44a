/**
 * `chain_terminated`: reads the terminate marks of a task and one of its modules, task first;
 * writes nothing (`ChainStateStore.terminated`, the ingress's ThresholdPreCheck).
 */
import { TerminatedCode, type TerminatedResult } from '../types.js';
import { defineTransition } from '../transition.js';

/** Input: a task and one of its modules. @internal */
export interface TerminatedInput {
  /** The task. */
  taskId: string;
  /** The module. */
  moduleId: string;
}

/** chain_terminated (read-only). @internal */
export const terminated = defineTransition({
  script: 'chain_terminated',
  keys: (k, { taskId, moduleId }: TerminatedInput) => ({
    terminateTask: k.terminateTask(taskId),
    terminateModule: k.terminateModule(taskId, moduleId),
  }),
  redisKeys: (keys) => [keys.terminateTask, keys.terminateModule],
  args: () => [],
  decode: (reply): TerminatedResult => ({
    code: reply.code as TerminatedResult['code'],
    reason: String(reply.payload[0] ?? ''),
  }),
  local(store, keys): TerminatedResult {
    const task = store.get(keys.terminateTask);
    if (task !== null) return { code: TerminatedCode.TASK_TERMINATED, reason: task };
    const mod = store.get(keys.terminateModule);
    if (mod !== null) return { code: TerminatedCode.MODULE_TERMINATED, reason: mod };
    return { code: TerminatedCode.ACTIVE, reason: '' };
  },
});
