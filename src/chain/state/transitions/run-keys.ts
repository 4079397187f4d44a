/**
 * `chain_run_keys`: up to `max` entries of a run's key index (key suffixes), for its clean-up;
 * writes nothing.
 */
import { defineTransition } from '../transition.js';

/** Input: the run and how many entries at most. @internal */
export interface RunKeysInput {
  /** The task. */
  taskId: string;
  /** The run. */
  runId: string;
  /** Most entries. */
  max: number;
}

/** chain_run_keys (read-only). @internal */
export const runKeys = defineTransition({
  script: 'chain_run_keys',
  keys: (k, { taskId, runId }: RunKeysInput) => ({ runKeys: k.runKeys(taskId, runId) }),
  redisKeys: (keys) => [keys.runKeys],
  args: (input) => [input.max],
  decode: (reply) => reply.payload.map(String),
  local: (store, keys, { max }) => store.zrangeByScore(keys.runKeys, -Infinity, Infinity, 0, max),
});
