/**
 * `chain_tasks_active`: the tasks active within a window, most recent first; drops older ones
 * from the index (`ChainStateStore.activeTasks`).
 */
import { defineTransition } from '../transition.js';

/** Input: the window and most task ids. @internal */
export interface TasksActiveInput {
  /** Tasks touched within this many ms. */
  windowMs: number;
  /** Most task ids returned. */
  max: number;
}

/** chain_tasks_active. @internal */
export const tasksActive = defineTransition({
  script: 'chain_tasks_active',
  keys: (k, _input: TasksActiveInput) => ({ active: k.activeTasks() }),
  redisKeys: (keys) => [keys.active],
  args: (input, ctx) => [ctx.now, input.windowMs, input.max],
  decode: (reply) => reply.payload.map(String),
  local(store, keys, { windowMs, max }): string[] {
    const since = Math.floor(store.now()) - windowMs;
    const ids = store.zrangeByScore(keys.active, since, Infinity, 0, -1);
    // write: scores are whole ms, so this drops score < since
    store.zremRangeByScore(keys.active, -Infinity, since - 1);
    return ids.reverse().slice(0, max);
  },
});
