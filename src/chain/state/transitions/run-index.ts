/**
 * `chain_run_index`: adds keys a node wrote outside the transitions (its persisted requests) to
 * its run's key index, when the run has one, so the run's clean-up finds them.
 */
import { keySuffix } from '../node-record.js';
import { defineTransition } from '../transition.js';

/** Input: the run and the keys (relative). @internal */
export interface RunIndexInput {
  /** The task. */
  taskId: string;
  /** The run. */
  runId: string;
  /** The keys written. */
  keys: readonly string[];
}

/** chain_run_index. @internal */
export const runIndex = defineTransition({
  script: 'chain_run_index',
  keys: (k, { taskId, runId }: RunIndexInput) => ({ runKeys: k.runKeys(taskId, runId) }),
  redisKeys: (keys) => [keys.runKeys],
  args: (input) => input.keys.map(keySuffix),
  decode: (reply) => Number(reply.payload[0] ?? 0),
  local(store, keys, input): number {
    if (!store.exists(keys.runKeys)) return 0;
    // write
    let added = 0;
    for (const key of input.keys) added += store.zadd(keys.runKeys, 0, keySuffix(key));
    return added;
  },
});
