/**
 * `chain_outbox_ack`: forgets outbox entries a relay has published; returns how many were still
 * leased (`ChainStateStore.ackOutbox`). An item entry removed here is no longer waited for by
 * its run, which may finish with it.
 */
import { readRun, writeRun, type RunRecord } from '../run-record.js';
import { defineTransition } from '../transition.js';

/** Input: the task and the published entries. @internal */
export interface OutboxAckInput {
  /** The task. */
  taskId: string;
  /** The entries, as `takeOutbox` returned them. */
  entries: readonly string[];
  /** The run of each entry its run waits for (an item), else undefined. */
  runs?: readonly (string | undefined)[];
}

/** The distinct runs of an ack, in first-seen order. */
function distinctRuns(input: OutboxAckInput): string[] {
  const out: string[] = [];
  for (const r of input.runs ?? []) if (r !== undefined && !out.includes(r)) out.push(r);
  return out;
}

/** chain_outbox_ack. @internal */
export const outboxAck = defineTransition({
  script: 'chain_outbox_ack',
  keys: (k, input: OutboxAckInput) => ({
    leases: k.outboxLeases(input.taskId),
    runs: distinctRuns(input).map((r) => k.run(input.taskId, r)),
  }),
  redisKeys: (keys) => [keys.leases, ...keys.runs],
  args: (input, ctx) => {
    const runs = distinctRuns(input);
    const args: (string | number)[] = [ctx.now, ctx.finishedTtlMs, input.entries.length];
    args.push(...input.entries);
    if (runs.length > 0)
      for (let i = 0; i < input.entries.length; i++) {
        const r = input.runs?.[i];
        args.push(r === undefined ? 0 : runs.indexOf(r) + 1);
      }
    return args;
  },
  decode: (reply) => Number(reply.payload[0] ?? 0),
  runs: (input) => distinctRuns(input).map((runId) => ({ taskId: input.taskId, runId })),
  local(store, keys, input, ctx): number {
    const now = store.now();
    const runIds = distinctRuns(input);
    const recs: (RunRecord | null)[] = keys.runs.map((key) => readRun(store, key));
    // write
    let removed = 0;
    const delivered = recs.map(() => 0);
    input.entries.forEach((e, i) => {
      const gone = store.zrem(keys.leases, e);
      removed += gone;
      const r = input.runs?.[i];
      if (gone === 1 && r !== undefined) delivered[runIds.indexOf(r)]! += 1;
    });
    recs.forEach((rec, j) => {
      if (!rec || delivered[j] === 0) return;
      const w = { key: keys.runs[j]!, rec, now, finishedTtlMs: ctx.finishedTtlMs };
      if (writeRun(store, w, { add: { ob: -delivered[j]! } }))
        ctx.finished(input.taskId, runIds[j]!);
    });
    return removed;
  },
});
