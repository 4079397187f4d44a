/**
 * `chain_task_touch`: records that a task is active, so that sweeps visit it
 * (`ChainStateStore.touchTask`).
 */
import { defineTransition } from '../transition.js';

/** Input: the task. @internal */
export interface TaskTouchInput {
  /** The task. */
  taskId: string;
}

/** chain_task_touch. @internal */
export const taskTouch = defineTransition({
  script: 'chain_task_touch',
  keys: (k, _input: TaskTouchInput) => ({ active: k.activeTasks() }),
  redisKeys: (keys) => [keys.active],
  args: (input, ctx) => [ctx.now, input.taskId],
  decode: () => undefined,
  local(store, keys, { taskId }): void {
    store.zadd(keys.active, Math.floor(store.now()), taskId);
  },
});
