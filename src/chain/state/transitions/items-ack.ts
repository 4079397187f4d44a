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
  entries: readonly HandedItem[];
}

/** The distinct runs of an ack, in first-seen order, and each entry's run (1-based; 0: none). */
interface AckRuns {
  runs: { taskId: string; runId: string }[];
  /** For each entry, the position of its run in `runs` plus one, or 0 without a run. */
  of: number[];
}

/** The last ack's runs: its keys, its ARGV and its finished runs read them in turn. */
let last: { entries: readonly HandedItem[]; length: number; runs: AckRuns } | undefined;

function ackRuns(input: ItemsAckInput): AckRuns {
  const entries = input.entries;
  if (last !== undefined && last.entries === entries && last.length === entries.length)
    return last.runs;
  const byTask = new Map<string, Map<string, number>>();
  const runs: { taskId: string; runId: string }[] = [];
  const of = new Array<number>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const { taskId, runId } = entries[i]!;
    if (runId === undefined) {
      of[i] = 0;
      continue;
    }
    let byRun = byTask.get(taskId);
    if (byRun === undefined) byTask.set(taskId, (byRun = new Map()));
    let at = byRun.get(runId);
    if (at === undefined) {
      runs.push({ taskId, runId });
      byRun.set(runId, (at = runs.length));
    }
    of[i] = at;
  }
  const out = { runs, of };
  last = { entries, length: entries.length, runs: out };
  return out;
}

/** chain_items_ack. @internal */
export const itemsAck = defineTransition({
  script: 'chain_items_ack',
  keys: (k, input: ItemsAckInput) => ({
    items: input.handOff.items,
    runs: ackRuns(input).runs.map((r) => k.run(r.taskId, r.runId)),
  }),
  redisKeys: (keys) => [keys.items, ...keys.runs],
  args: (input, ctx) => {
    const { of } = ackRuns(input);
    const args: (string | number)[] = [
      input.handOff.group,
      ctx.now,
      ctx.finishedTtlMs,
      input.entries.length,
    ];
    for (const e of input.entries) args.push(e.id);
    for (const run of of) args.push(run);
    return args;
  },
  decode: (reply) => Number(reply.payload[0] ?? 0),
  runs: (input) => ackRuns(input).runs,
  crossSlot: () => true,
  local(): number {
    throw new ConfigError('the items stream needs a Redis store');
  },
});
