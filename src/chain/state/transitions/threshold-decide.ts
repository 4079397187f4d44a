/**
 * `etm_threshold_decide`: counts a failure at module and task level, decides, and writes the
 * terminate marks the decision reaches, in one step (`ChainStateStore.thresholdDecide`); a mark
 * it writes settles the module (or every module) of the failure's run as terminated.
 */
import {
  ThresholdCode,
  type TerminateScope,
  type ThresholdInput,
  type ThresholdResult,
} from '../types.js';
import { checkSortedSet, keySuffix } from '../node-record.js';
import { readRun, writeRun } from '../run-record.js';
import { defineTransition } from '../transition.js';

/** The reason a decision writes into the terminate mark of `scope`. @internal */
export function thresholdReason(scope: TerminateScope, moduleErrors: number, taskErrors: number) {
  return `threshold: ${scope} errors reached (module ${moduleErrors}, task ${taskErrors})`;
}

/** The value of an error counter (a missing counter is 0). */
const count = (text: string | null): number => (text === null ? 0 : Number(text));

/** etm_threshold_decide. @internal */
export const thresholdDecide = defineTransition({
  script: 'etm_threshold_decide',
  keys: (k, { taskId, runId, moduleId, failureId }: ThresholdInput) => ({
    moduleErrors: k.moduleThreshold(taskId, runId, moduleId),
    taskErrors: k.taskThreshold(taskId, runId),
    terminateTask: k.terminateTask(taskId, runId),
    terminateModule: k.terminateModule(taskId, runId, moduleId),
    /** The decision mark of this failure: none without a failureId. */
    seen: failureId === undefined ? [] : [k.thresholdMark(taskId, failureId)],
    /** The run's record and key index. */
    run: [k.run(taskId, runId), k.runKeys(taskId, runId)],
  }),
  redisKeys: (keys) => [
    keys.moduleErrors,
    keys.taskErrors,
    keys.terminateTask,
    keys.terminateModule,
    ...keys.seen,
    ...keys.run,
  ],
  args: (input, ctx) => [
    input.moduleThreshold,
    input.taskThreshold,
    input.retryAfterMs,
    ctx.ttlMs,
    input.failureId === undefined ? '0' : '1',
    ctx.now,
    input.moduleId,
    ctx.finishedTtlMs,
  ],
  runs: ({ taskId, runId }) => (runId === undefined ? [] : [{ taskId, runId }]),
  decode: (reply): ThresholdResult => {
    const marked: TerminateScope[] = [];
    if (Number(reply.payload[2] ?? 0) === 1) marked.push('module');
    if (Number(reply.payload[3] ?? 0) === 1) marked.push('task');
    return {
      code: reply.code as ThresholdResult['code'],
      moduleErrors: Number(reply.payload[0] ?? 0),
      taskErrors: Number(reply.payload[1] ?? 0),
      marked,
    };
  },
  local(store, keys, input, ctx): ThresholdResult {
    const { moduleThreshold, taskThreshold, retryAfterMs } = input;
    const seenKey = keys.seen[0];
    const mBefore = count(store.get(keys.moduleErrors));
    const tBefore = count(store.get(keys.taskErrors));
    const current = (code: ThresholdResult['code']): ThresholdResult => ({
      code,
      moduleErrors: mBefore,
      taskErrors: tBefore,
      marked: [],
    });
    if (store.exists(keys.terminateTask)) return current(ThresholdCode.TERMINATE_TASK);
    if (store.exists(keys.terminateModule)) return current(ThresholdCode.TERMINATE_MODULE);
    const seen = seenKey === undefined ? null : store.get(seenKey);
    if (seen !== null) return current(Number(seen) as ThresholdResult['code']);
    const now = store.now();
    const [runKey, runKeysKey] = keys.run;
    const run = runKey === undefined ? null : readRun(store, runKey);
    if (run && seenKey !== undefined && runKeysKey !== undefined) checkSortedSet(store, runKeysKey);
    const m = mBefore + 1;
    const t = tBefore + 1;
    const marked: TerminateScope[] = [];
    if (m >= moduleThreshold) marked.push('module');
    if (t >= taskThreshold) marked.push('task');
    const code =
      t >= taskThreshold
        ? ThresholdCode.TERMINATE_TASK
        : m >= moduleThreshold
          ? ThresholdCode.TERMINATE_MODULE
          : retryAfterMs > 0
            ? ThresholdCode.RETRY_AFTER
            : ThresholdCode.CONTINUE;
    // every check passed: write (counters, then the module's mark, then the task's)
    store.set(keys.moduleErrors, String(m), ctx.ttlMs);
    store.set(keys.taskErrors, String(t), ctx.ttlMs);
    for (const scope of marked) {
      const key = scope === 'module' ? keys.terminateModule : keys.terminateTask;
      store.set(key, thresholdReason(scope, m, t), ctx.ttlMs);
    }
    if (seenKey !== undefined) store.set(seenKey, String(code), ctx.ttlMs);
    if (run && runKey !== undefined && runKeysKey !== undefined) {
      if (seenKey !== undefined) {
        store.zadd(runKeysKey, 0, keySuffix(seenKey));
        store.expire(runKeysKey, ctx.ttlMs);
      }
      if (marked.length > 0 && run.state === 'running') {
        const terminate = marked.includes('task') ? Object.keys(run.modules) : [input.moduleId];
        const w = { key: runKey, rec: run, now, finishedTtlMs: ctx.finishedTtlMs };
        if (writeRun(store, w, { terminate }) && input.runId !== undefined)
          ctx.finished(input.taskId, input.runId);
      }
    }
    return { code, moduleErrors: m, taskErrors: t, marked };
  },
});
