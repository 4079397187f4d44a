/**
 * `ptm_commit_success`: marks a node done and creates and queues its successors and items, at
 * most once, skipping keyed successors whose de-duplication key was taken
 * (`ChainStateStore.commitSuccess`); counts the node done and its successors queued and items in
 * its run.
 */
import {
  CHAIN_SCHEMA_VERSION,
  CommitCode,
  type CommitSuccessInput,
  type CommitSuccessResult,
} from '../types.js';
import {
  checkSortedSet,
  freshNode,
  keySuffix,
  pushOutbox,
  readNode,
  readOutboxSequence,
  writeNode,
} from '../node-record.js';
import { readRun, writeRun } from '../run-record.js';
import { ConfigError } from '../../../errors.js';
import { RUN_FINISHED, defineTransition } from '../transition.js';
import type { ChainKeyBuilder } from '../../../keys/chain-key-builder.js';

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

/** ptm_commit_success. @internal */
export const commitSuccess = defineTransition({
  script: 'ptm_commit_success',
  keys: (k, { node, successors, handOff }: CommitSuccessInput) => ({
    node: k.ptm(node.taskId, node),
    outbox: k.outbox(node.taskId),
    run: k.run(node.taskId, node.runId),
    runKeys: k.runKeys(node.taskId, node.runId),
    successors: successors.map((s) => k.ptm(s.node.taskId, s.node)),
    /** The de-duplication mark of each keyed successor, in successor order. */
    dedup: dedupKeys(k, successors),
    /** Local twin only: the outbox's sequence counter. */
    outboxSeq: k.outboxSequence(node.taskId),
    /** With a hand-off: the parser stream and the items stream (none without). */
    streams:
      handOff === undefined
        ? []
        : handOff.perTask === true
          ? [k.taskQueue(node.taskId, 'parser'), k.taskQueue(node.taskId, 'items')]
          : [handOff.stream, handOff.items],
  }),
  redisKeys: (keys) => [
    keys.node,
    keys.outbox,
    keys.run,
    keys.runKeys,
    ...keys.streams,
    ...keys.successors,
    ...keys.dedup,
  ],
  args: (input, ctx) => {
    const args: (string | number)[] = [
      input.owner,
      input.version,
      ctx.ttlMs,
      CHAIN_SCHEMA_VERSION,
      ctx.keys.ptmKey(input.node),
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
    for (const s of input.successors) args.push(s.message);
    args.push(...keyed);
    for (const item of input.items) args.push(item);
    return args;
  },
  decode: (reply): CommitSuccessResult =>
    result(
      reply.code as CommitSuccessResult['code'],
      Number(reply.payload[0] ?? 0),
      reply.payload
        .slice(2)
        .filter((v) => typeof v === 'number' || !String(v).startsWith(RUN_FINISHED))
        .map(Number),
      reply.payload[1] === 1,
    ),
  runs: ({ node }) => [node],
  // shared streams are in slots of their own (one standalone Redis only); per-task streams are
  // in the task's slot
  crossSlot: (input) => input.handOff !== undefined && input.handOff.perTask !== true,
  // the in-process and durable stores have no streams: the engine gives them no hand-off, and
  // this twin queues everything in the outbox
  local(store, keys, input, ctx): CommitSuccessResult {
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
    successors.forEach((s, i) => {
      const key = keys.successors[i]!;
      const dedupKey = s.key === undefined ? undefined : keys.dedup[keyed++]!;
      if (dedupKey !== undefined) {
        if (marks.has(dedupKey) || store.exists(dedupKey)) {
          duplicates.push(i);
          return;
        }
        marks.add(dedupKey);
      }
      if (created.has(key) || store.exists(key)) return;
      created.add(key);
      queued.push(s.message);
    });
    queued.push(...items);
    const seq = readOutboxSequence(store, keys);
    const run = readRun(store, keys.run);
    // the script checks the run key index by its first write, the ZADD (when it adds anything)
    if (run && created.size + marks.size > 0) checkSortedSet(store, keys.runKeys);
    // every check passed: write
    rec.status = 'done';
    writeNode(store, keys.node, rec, ctx.ttlMs);
    const nodeId = ctx.keys.ptmKey(node);
    for (const key of created) writeNode(store, key, { ...freshNode(), queued: true }, ctx.ttlMs);
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
  },
});
