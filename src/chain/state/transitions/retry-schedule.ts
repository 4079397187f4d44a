/**
 * `etm_retry_schedule`: schedules a retry of a failed node into the task's delayed set
 * (`ChainStateStore.retrySchedule`); the node goes back from running to queued in its run.
 */
import { CHAIN_SCHEMA_VERSION, RetryScheduleCode, type RetryScheduleInput } from '../types.js';
import { checkSortedSet, isTerminated, readNode, writeNode } from '../node-record.js';
import { readRun, writeRun } from '../run-record.js';
import { defineTransition } from '../transition.js';

/** Result of a retry schedule. */
type RetryScheduleResult = (typeof RetryScheduleCode)[keyof typeof RetryScheduleCode];

/** etm_retry_schedule. @internal */
export const retrySchedule = defineTransition({
  script: 'etm_retry_schedule',
  keys: (k, { node }: RetryScheduleInput) => ({
    node: k.ptm(node.taskId, node),
    retries: k.retryZset(node.taskId),
    terminateTask: k.terminateTask(node.taskId, node.runId),
    terminateModule: k.terminateModule(node.taskId, node.runId, node.moduleId),
    run: k.run(node.taskId, node.runId),
  }),
  redisKeys: (keys) => [
    keys.node,
    keys.retries,
    keys.terminateTask,
    keys.terminateModule,
    keys.run,
  ],
  args: (input, ctx) => [
    ctx.now,
    input.attempt,
    input.maxRetries,
    input.delayMs,
    input.message,
    input.allowed ? '1' : '0',
    ctx.ttlMs,
    CHAIN_SCHEMA_VERSION,
    input.node.moduleId,
    ctx.finishedTtlMs,
  ],
  decode: (reply) => reply.code as RetryScheduleResult,
  runs: ({ node }) => [node],
  local(store, keys, input, ctx): RetryScheduleResult {
    const { attempt, maxRetries, delayMs, message, allowed } = input;
    if (!allowed || isTerminated(store, keys.terminateTask, keys.terminateModule))
      return RetryScheduleCode.RETRY_NOT_ALLOWED;
    if (attempt > maxRetries) return RetryScheduleCode.MAX_RETRY_EXCEEDED;
    const rec = readNode(store, keys.node);
    // a node counted failed for good (given up) is not retried
    if (!rec || rec.status === 'done' || rec.final === true)
      return RetryScheduleCode.RETRY_NOT_ALLOWED;
    if (rec.epoch >= attempt) return RetryScheduleCode.RETRY_SCHEDULED; // replay: already scheduled
    const now = store.now();
    if (rec.status === 'processing' && rec.leaseUntil > now)
      return RetryScheduleCode.RETRY_NOT_ALLOWED;
    const run = readRun(store, keys.run);
    checkSortedSet(store, keys.retries);
    // every check passed: write
    const wasQueued = rec.queued === true;
    rec.epoch = attempt;
    rec.status = 'pending';
    rec.owner = '';
    rec.queued = true;
    writeNode(store, keys.node, rec, ctx.ttlMs);
    if (run && !wasQueued) {
      const w = { key: keys.run, rec: run, now, finishedTtlMs: ctx.finishedTtlMs };
      if (writeRun(store, w, { module: input.node.moduleId, add: { r: -1, q: 1 } }))
        ctx.finished(input.node.taskId, input.node.runId);
    }
    store.zadd(keys.retries, now + delayMs, message);
    store.expire(keys.retries, ctx.ttlMs);
    return RetryScheduleCode.RETRY_SCHEDULED;
  },
});
