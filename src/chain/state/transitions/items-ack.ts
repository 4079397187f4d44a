/**
 * `chain_items_ack`: acknowledges items of the items stream once handed over (or set aside), so
 * their runs stop waiting for them and may finish. Redis only: the items stream exists where a
 * commit hands off by itself (see {@link CommitHandOff}); the in-process and durable stores keep
 * items in their outbox and acknowledge them with `chain_outbox_ack`.
 */
import { ConfigError } from '../../../errors.js';
import type { CommitHandOff } from '../commit-hand-off.js';
import { defineTransition } from '../transition.js';

/** One entry of the items stream, with the run that waits for it. @internal */
export interface HandedItem {
  /** The stream entry id. */
  id: string;
  taskId: string;
  /** The item's run (undefined: a run that is not counted). */
  runId: string | undefined;
}

/** Input of `chain_items_ack`. @internal */
export interface ItemsAckInput {
  /** The streams of the hand-off (`items` and `group` are used). */
  handOff: Pick<CommitHandOff, 'items' | 'group'>;
  /** The acknowledging consumer (the entries still pending are claimed to it, then acknowledged). */
  consumer: string;
  entries: readonly HandedItem[];
}

/** The distinct runs of an ack, in first-seen order, as `taskId` + NUL + `runId`. */
function distinctRuns(input: ItemsAckInput): { taskId: string; runId: string }[] {
  const seen = new Set<string>();
  const out: { taskId: string; runId: string }[] = [];
  for (const e of input.entries) {
    if (e.runId === undefined) continue;
    const id = `${e.taskId}\u0000${e.runId}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ taskId: e.taskId, runId: e.runId });
  }
  return out;
}

/** chain_items_ack. @internal */
export const itemsAck = defineTransition({
  script: 'chain_items_ack',
  keys: (k, input: ItemsAckInput) => ({
    items: input.handOff.items,
    runs: distinctRuns(input).map((r) => k.run(r.taskId, r.runId)),
  }),
  redisKeys: (keys) => [keys.items, ...keys.runs],
  args: (input, ctx) => {
    const runs = distinctRuns(input).map((r) => `${r.taskId}\u0000${r.runId}`);
    const args: (string | number)[] = [
      input.handOff.group,
      input.consumer,
      ctx.now,
      ctx.finishedTtlMs,
      input.entries.length,
    ];
    for (const e of input.entries) args.push(e.id);
    for (const e of input.entries)
      args.push(e.runId === undefined ? 0 : runs.indexOf(`${e.taskId}\u0000${e.runId}`) + 1);
    return args;
  },
  decode: (reply) => Number(reply.payload[0] ?? 0),
  runs: distinctRuns,
  crossSlot: () => true,
  local(): number {
    throw new ConfigError('the items stream needs a Redis store');
  },
});
