/**
 * `chain_run_expire`: one step of the clean-up of a finished run — the keys named by some
 * entries of its key index get the finished-run TTL (never a longer one) and the entries leave
 * the index; with the last ones, the run leaves its task's unfinished runs and, when no other
 * is left, the task's own keys get that TTL too (`ChainStateStore.runCleanup`).
 */
import { checkSortedSet } from '../node-record.js';
import { defineTransition } from '../transition.js';

/** Input: the run, the index entries done, the keys they name, and the task's keys. @internal */
export interface RunExpireInput {
  /** The task. */
  taskId: string;
  /** The run. */
  runId: string;
  /** Index entries (key suffixes) to remove. */
  entries: readonly string[];
  /** The keys they name (relative). */
  keys: readonly string[];
  /** The task's own keys (relative): given with the last entries, else empty. */
  taskKeys: readonly string[];
}

/** chain_run_expire. @internal */
export const runExpire = defineTransition({
  script: 'chain_run_expire',
  keys: (k, input: RunExpireInput) => ({
    runKeys: k.runKeys(input.taskId, input.runId),
    taskRuns: k.taskRuns(input.taskId),
    keys: input.keys,
    taskKeys: input.taskKeys,
  }),
  redisKeys: (keys) => [keys.runKeys, keys.taskRuns, ...keys.keys, ...keys.taskKeys],
  args: (input, ctx) => [
    ctx.finishedTtlMs,
    input.runId,
    input.keys.length,
    input.taskKeys.length > 0 ? '1' : '0',
    ...input.entries,
  ],
  decode: (reply) => Number(reply.payload[0] ?? 0),
  local(store, keys, input, ctx): number {
    const ttl = ctx.finishedTtlMs;
    // as the script: the index only when entries leave it, the run list only with the last ones
    if (input.entries.length > 0) checkSortedSet(store, keys.runKeys);
    if (keys.taskKeys.length > 0) checkSortedSet(store, keys.taskRuns);
    const live = keys.keys.filter((key) => store.exists(key));
    const last = keys.taskKeys.length > 0;
    const others = last
      ? store.zrangeByScore(keys.taskRuns, -Infinity, Infinity).filter((r) => r !== input.runId)
      : [];
    const taskLive =
      last && others.length === 0 ? keys.taskKeys.filter((k) => store.exists(k)) : [];
    // write (an expire never lengthens: the local store's keys here all carry a TTL >= this one
    // while their run runs, and the clean-up comes after the run finished)
    for (const key of live) store.expire(key, ttl);
    for (const e of input.entries) store.zrem(keys.runKeys, e);
    if (last) store.zrem(keys.taskRuns, input.runId);
    for (const key of taskLive) store.expire(key, ttl);
    return live.length + taskLive.length;
  },
});
