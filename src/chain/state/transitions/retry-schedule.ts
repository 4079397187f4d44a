/**
 * `etm_retry_schedule`: schedules a retry of a failed node into the task's delayed set
 * (`ChainStateStore.retrySchedule`).
 */
import { CHAIN_SCHEMA_VERSION, RetryScheduleCode, type RetryScheduleInput } from '../types.js';
import { isTerminated, readNode, writeNode } from '../node-record.js';
import { defineTransition } from '../transition.js';

/** Result of a retry schedule. */
type RetryScheduleResult = (typeof RetryScheduleCode)[keyof typeof RetryScheduleCode];

/** etm_retry_schedule. @internal */
export const retrySchedule = defineTransition({
  script: 'etm_retry_schedule',
  keys: (k, { node }: RetryScheduleInput) => ({
    node: k.ptm(node.taskId, node),
    retries: k.retryZset(node.taskId),
    terminateTask: k.terminateTask(node.taskId),
    terminateModule: k.terminateModule(node.taskId, node.moduleId),
  }),
  redisKeys: (keys) => [keys.node, keys.retries, keys.terminateTask, keys.terminateModule],
  args: (input, ctx) => [
    ctx.now,
    input.attempt,
    input.maxRetries,
    input.delayMs,
    input.message,
    input.allowed ? '1' : '0',
    ctx.ttlMs,
    CHAIN_SCHEMA_VERSION,
  ],
  decode: (reply) => reply.code as RetryScheduleResult,
  local(store, keys, input, ctx): RetryScheduleResult {
    const { attempt, maxRetries, delayMs, message, allowed } = input;
    if (!allowed || isTerminated(store, keys.terminateTask, keys.terminateModule))
      return RetryScheduleCode.RETRY_NOT_ALLOWED;
    if (attempt > maxRetries) return RetryScheduleCode.MAX_RETRY_EXCEEDED;
    const rec = readNode(store, keys.node);
    if (!rec || rec.status === 'done') return RetryScheduleCode.RETRY_NOT_ALLOWED;
    if (rec.epoch >= attempt) return RetryScheduleCode.RETRY_SCHEDULED; // replay: already scheduled
    const now = store.now();
    if (rec.status === 'processing' && rec.leaseUntil > now)
      return RetryScheduleCode.RETRY_NOT_ALLOWED;
    // every check passed: write
    rec.epoch = attempt;
    rec.status = 'pending';
    rec.owner = '';
    writeNode(store, keys.node, rec, ctx.ttlMs);
    store.zadd(keys.retries, now + delayMs, message);
    store.expire(keys.retries, ctx.ttlMs);
    return RetryScheduleCode.RETRY_SCHEDULED;
  },
});
