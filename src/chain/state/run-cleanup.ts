/**
 * The clean-up of a finished run, planned the same way for both stores: the index entries of a
 * batch name the keys to shorten (a node's record, its fallback gate, a failure's mark, a
 * persisted request), and the last batch adds the task's own keys.
 */
import type { ChainKeyBuilder } from '../../keys/chain-key-builder.js';
import type { RunExpireInput } from './transitions/run-expire.js';

/** The keys one batch of index entries names, and the task's keys with the last batch. @internal */
export function cleanupPlan(
  k: ChainKeyBuilder,
  taskId: string,
  runId: string,
  entries: readonly string[],
  last: boolean,
  modules: readonly string[],
): RunExpireInput {
  const keys: string[] = [];
  // each entry names its key (a node's fallback gate has an entry of its own)
  for (const suffix of entries) keys.push(k.taskKey(taskId, suffix));
  // the run's own error counters and terminate marks go with its last batch
  if (last)
    keys.push(
      k.taskThreshold(taskId, runId),
      k.terminateTask(taskId, runId),
      ...modules.flatMap((m) => [
        k.moduleThreshold(taskId, runId, m),
        k.terminateModule(taskId, runId, m),
      ]),
    );
  const taskKeys = last
    ? [
        k.taskRecord(taskId),
        k.retryZset(taskId),
        k.outbox(taskId),
        k.outboxSequence(taskId),
        k.outboxLeases(taskId),
        // a lease index an earlier release wrote (key layout 2)
        k.leases(taskId),
      ]
    : [];
  return { taskId, runId, entries, keys, taskKeys };
}
