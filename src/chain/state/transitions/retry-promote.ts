/**
 * `etm_retry_promote`: moves a task's due retries into its outbox, each exactly once, whoever
 * polls (`ChainStateStore.promoteDueRetries`).
 */
import { pushOutbox, readOutboxSequence } from '../node-record.js';
import { defineTransition } from '../transition.js';

/** Input: a task and how many retries at most. @internal */
export interface RetryPromoteInput {
  /** The task. */
  taskId: string;
  /** Most retries promoted. */
  max: number;
}

/** etm_retry_promote. @internal */
export const retryPromote = defineTransition({
  script: 'etm_retry_promote',
  keys: (k, { taskId }: RetryPromoteInput) => ({
    retries: k.retryZset(taskId),
    outbox: k.outbox(taskId),
    /** Local twin only: the outbox's sequence counter. */
    outboxSeq: k.outboxSequence(taskId),
  }),
  redisKeys: (keys) => [keys.retries, keys.outbox],
  args: (input, ctx) => [ctx.now, input.max, ctx.ttlMs],
  decode: (reply) => reply.payload.map(String),
  local(store, keys, { max }, ctx): string[] {
    const due = store.zrangeByScore(keys.retries, -Infinity, store.now(), 0, max);
    if (due.length === 0) return due;
    const seq = readOutboxSequence(store, keys);
    // every check passed: write
    pushOutbox(store, keys, seq, due, ctx.ttlMs);
    for (const m of due) store.zrem(keys.retries, m);
    return due;
  },
});
