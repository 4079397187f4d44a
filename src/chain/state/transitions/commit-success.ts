/**
 * `ptm_commit_success`: marks a node done and creates and queues its successors and items, at
 * most once, skipping keyed successors whose de-duplication key was taken
 * (`ChainStateStore.commitSuccess`); counts the node done and its successors queued and items in
 * its run.
 */
import {
  CHAIN_SCHEMA_VERSION,
  CommitCode,
  type ClaimResult,
  type CommitSuccessInput,
  type CommitSuccessResult,
} from '../types.js';
import {
  checkSortedSet,
  keySuffix,
  pushOutbox,
  queuedNode,
  readNode,
  readOutboxSequence,
  writeNode,
} from '../node-record.js';
import { readRun, writeRun } from '../run-record.js';
import { ConfigError } from '../../../errors.js';
import { OUTBOX_ITEM, OUTBOX_PTM } from '../../engine/outbox.js';
import { RUN_FINISHED, defineTransition } from '../transition.js';
import type { ChainKeyBuilder } from '../../../keys/chain-key-builder.js';
import { claim } from './claim.js';

/** How the script reports the claim of the next node: `claim:<code>:<version>:<lease>:<reason>`. */
const CLAIMED = 'claim:';

/** The indexes of the keyed successors, ascending. */
function keyedIndexes(input: CommitSuccessInput): number[] {
  const out: number[] = [];
  input.successors.forEach((s, i) => {
    if (s.key !== undefined) out.push(i);
  });
  return out;
}

/** The de-duplication mark of each keyed successor, in successor order. */
function dedupKeys(k: ChainKeyBuilder, successors: CommitSuccessInput['successors']): string[] {
  const out: string[] = [];
  for (const s of successors) {
    if (s.key !== undefined) out.push(k.dedup(s.node.taskId, s.node.runId, s.node.moduleId, s.key));
  }
  return out;
}

function result(
  code: CommitSuccessResult['code'],
  created = 0,
  duplicates: number[] = [],
  handedOff = false,
): CommitSuccessResult {
  return handedOff ? { code, created, duplicates, handedOff } : { code, created, duplicates };
}

/** The claim the script reported (see {@link CLAIMED}). */
function decodeClaimed(text: string): ClaimResult {
  const [code, version, leaseUntil] = text.slice(CLAIMED.length).split(':', 3);
  const reason = text.split(':').slice(4).join(':');
  return {
    code: Number(code) as ClaimResult['code'],
    version: Number(version),
    leaseUntil: Number(leaseUntil),
    reason,
  };
}

/**
 * An outbox entry without its letter (a hand-off's argument: see the script's header); an entry
 * with another letter cannot be handed off (the script would queue it back with `letter`).
 */
function bare(entry: string, letter: string): string {
  if (!entry.startsWith(letter))
    throw new ConfigError(`a commit hand-off takes outbox entries starting with '${letter}'`);
  return entry.slice(1);
}

/** ptm_commit_success. @internal */
export const commitSuccess = defineTransition({
  script: 'ptm_commit_success',
  keys: (k, input: CommitSuccessInput) => ({
    node: k.ptm(input.node.taskId, input.node),
    outbox: k.outbox(input.node.taskId),
    run: k.run(input.node.taskId, input.node.runId),
    runKeys: k.runKeys(input.node.taskId, input.node.runId),
    successors: input.successors.map((s) => k.ptm(s.node.taskId, s.node)),
    /** The de-duplication mark of each keyed successor, in successor order. */
    dedup: dedupKeys(k, input.successors),
    /** Local twin only: the outbox's sequence counter. */
    outboxSeq: k.outboxSequence(input.node.taskId),
    /** With a hand-off: the parser stream and the items stream (none without). */
    streams:
      input.handOff === undefined
        ? []
        : input.handOff.perTask === true
          ? [k.taskQueue(input.node.taskId, 'parser'), k.taskQueue(input.node.taskId, 'items')]
          : [input.handOff.stream, input.handOff.items],
    /** With a claim of the next node: its keys (see claim.ts). */
    claim: input.claim === undefined ? [] : claim.redisKeys(claim.keys(k, input.claim)),
  }),
  // the claim's run keys only when they are not the commit's (the script reuses KEYS 3 and 4)
  redisKeys: (keys) => [
    keys.node,
    keys.outbox,
    keys.run,
    keys.runKeys,
    ...keys.streams,
    ...keys.successors,
    ...keys.dedup,
    ...(keys.claim.length === 5 && keys.claim[3] === keys.run && keys.claim[4] === keys.runKeys
      ? keys.claim.slice(0, 3)
      : keys.claim),
  ],
  args: (input, ctx) => {
    const args: (string | number)[] = [
      input.owner,
      input.version,
      ctx.ttlMs,
      CHAIN_SCHEMA_VERSION,
      // the value of the de-duplication marks: none without a keyed successor
      input.successors.some((s) => s.key !== undefined) ? ctx.keys.ptmKey(input.node) : '',
      input.successors.length,
      // the caller's time spares the script a TIME (a test clock override wins)
      ctx.now === '' && input.at !== undefined ? String(Math.floor(input.at)) : ctx.now,
      input.node.moduleId,
      ctx.finishedTtlMs,
    ];
    const keyed = keyedIndexes(input);
    args.push(keyed.length);
    const h = input.handOff;
    if (h === undefined) args.push('', '', '', '');
    else args.push('1', h.capacity === Infinity ? '' : h.capacity, h.group, h.delivery ?? '');
    const c = input.claim;
    if (c === undefined) args.push('');
    else args.push('1', ctx.now, c.owner, c.leaseMs, c.epoch, c.root ? '1' : '0', c.node.moduleId);
    // with a hand-off, without their outbox letter: the streams take them so, and the script
    // gives the outbox (when the parser stream has no room) 'p' and 'i' back
    const cut = h === undefined ? 0 : 1;
    for (const s of input.successors)
      args.push(cut === 0 ? s.message : bare(s.message, OUTBOX_PTM));
    args.push(...keyed);
    for (const item of input.items) args.push(cut === 0 ? item : bare(item, OUTBOX_ITEM));
    return args;
  },
  decode: (reply): CommitSuccessResult => {
    const duplicates: number[] = [];
    let claimed: ClaimResult | undefined;
    for (let i = 2; i < reply.payload.length; i++) {
      const v = reply.payload[i]!;
      if (typeof v === 'number') duplicates.push(v);
      else if (v.startsWith(CLAIMED)) claimed = decodeClaimed(v);
      else if (!v.startsWith(RUN_FINISHED)) duplicates.push(Number(v));
    }
    const out = result(
      reply.code as CommitSuccessResult['code'],
      Number(reply.payload[0] ?? 0),
      duplicates,
      reply.payload[1] === 1,
    );
    if (claimed !== undefined) out.claimed = claimed;
    return out;
  },
  // the runs of the committed node and of the claimed one ('run_finished:1' and ':2')
  runs: ({ node, claim: next }) => (next === undefined ? [node] : [node, next.node]),
  // shared streams are in slots of their own (one standalone Redis only); per-task streams are
  // in the task's slot, and so is the next node's claim when its task is the same
  crossSlot: (input) =>
    (input.handOff !== undefined && input.handOff.perTask !== true) ||
    (input.claim !== undefined && input.claim.node.taskId !== input.node.taskId),
  // the in-process and durable stores have no streams: the engine gives them no hand-off, and
  // this twin queues everything in the outbox
  local(store, keys, input, ctx): CommitSuccessResult {
    const committed = commitLocally(store, keys, input, ctx);
    // the next node's claim follows a commit that went through, as the script runs it
    if (input.claim !== undefined && committed.code === CommitCode.COMMIT_OK) {
      try {
        const [node, terminateTask, terminateModule, run, runKeys] = keys.claim;
        const claimKeys = {
          node: node!,
          terminateTask: terminateTask!,
          terminateModule: terminateModule!,
          run: run!,
          runKeys: runKeys!,
        };
        committed.claimed = claim.local(store, claimKeys, input.claim, ctx);
      } catch {
        // as the script: a claim that fails leaves the node to its caller's own claim
      }
    }
    return committed;
  },
});

/** The commit itself (the twin of the script without its claim). */
function commitLocally(
  store: Parameters<typeof commitSuccess.local>[0],
  keys: Parameters<typeof commitSuccess.local>[1],
  input: CommitSuccessInput,
  ctx: Parameters<typeof commitSuccess.local>[3],
): CommitSuccessResult {
  const { node, owner, version, successors, items } = input;
  if (input.handOff !== undefined)
    throw new ConfigError('a commit hand-off needs the streams of a Redis store');
  const now = store.now();
  const rec = readNode(store, keys.node);
  if (!rec) return result(CommitCode.FENCING_REJECT);
  if (rec.status === 'done')
    return result(
      rec.version === version && rec.owner === owner
        ? CommitCode.ALREADY_COMMITTED
        : CommitCode.FENCING_REJECT,
    );
  if (rec.owner !== owner || rec.version !== version) return result(CommitCode.FENCING_REJECT);
  if (rec.status !== 'processing') return result(CommitCode.CAS_CONFLICT);
  // a keyed successor whose key was taken is a duplicate; a successor listed twice, or one
  // that exists already, is neither created nor queued again
  const created = new Set<string>();
  const marks = new Set<string>();
  const duplicates: number[] = [];
  const queued: string[] = [];
  let keyed = 0; // the keyed successors' marks are in `keys.dedup`, in successor order
  for (let i = 0; i < successors.length; i++) {
    const s = successors[i]!;
    const key = keys.successors[i]!;
    const dedupKey = s.key === undefined ? undefined : keys.dedup[keyed++]!;
    if (dedupKey !== undefined) {
      if (marks.has(dedupKey) || store.exists(dedupKey)) {
        duplicates.push(i);
        continue;
      }
      marks.add(dedupKey);
    }
    if (created.has(key) || store.exists(key)) continue;
    created.add(key);
    queued.push(s.message);
  }
  for (let i = 0; i < items.length; i++) queued.push(items[i]!);
  const seq = readOutboxSequence(store, keys);
  const run = readRun(store, keys.run);
  // the script checks the run key index by its first write, the ZADD (when it adds anything)
  if (run && created.size + marks.size > 0) checkSortedSet(store, keys.runKeys);
  // every check passed: write
  rec.status = 'done';
  writeNode(store, keys.node, rec, ctx.ttlMs);
  const nodeId = ctx.keys.ptmKey(node);
  for (const key of created) writeNode(store, key, queuedNode(), ctx.ttlMs);
  for (const key of marks) store.set(key, nodeId, ctx.ttlMs);
  pushOutbox(store, keys, seq, queued, ctx.ttlMs);
  if (run) {
    for (const key of created) store.zadd(keys.runKeys, 0, keySuffix(key));
    for (const key of marks) store.zadd(keys.runKeys, 0, keySuffix(key));
    if (created.size + marks.size > 0) store.expire(keys.runKeys, ctx.ttlMs);
    const n = items.length;
    const w = { key: keys.run, rec: run, now, finishedTtlMs: ctx.finishedTtlMs };
    const add = { q: created.size, r: -1, d: 1, i: n, ob: n };
    if (writeRun(store, w, { module: node.moduleId, add })) ctx.finished(node.taskId, node.runId);
  }
  return result(CommitCode.COMMIT_OK, created.size, duplicates);
}
