/**
 * `ptm_commit_success`: marks a node done and creates and queues its successors and items, at
 * most once (`ChainStateStore.commitSuccess`); counts the node done and its successors queued and
 * items in its run.
 */
import { CHAIN_SCHEMA_VERSION, CommitCode, type CommitSuccessInput } from '../types.js';
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
import { defineTransition } from '../transition.js';

/** Result of a success commit. */
type CommitResult = (typeof CommitCode)[keyof typeof CommitCode];

/** ptm_commit_success. @internal */
export const commitSuccess = defineTransition({
  script: 'ptm_commit_success',
  keys: (k, { node, successors }: CommitSuccessInput) => ({
    node: k.ptm(node.taskId, node),
    gate: k.advanceGate(node.taskId, node),
    outbox: k.outbox(node.taskId),
    leases: k.leases(node.taskId),
    run: k.run(node.taskId, node.runId),
    runKeys: k.runKeys(node.taskId, node.runId),
    successors: successors.map((s) => k.ptm(s.node.taskId, s.node)),
    /** Local twin only: the outbox's sequence counter. */
    outboxSeq: k.outboxSequence(node.taskId),
  }),
  redisKeys: (keys) => [
    keys.node,
    keys.gate,
    keys.outbox,
    keys.leases,
    keys.run,
    keys.runKeys,
    ...keys.successors,
  ],
  args: (input, ctx) => {
    const args: (string | number)[] = [
      input.owner,
      input.version,
      ctx.ttlMs,
      CHAIN_SCHEMA_VERSION,
      ctx.keys.ptmKey(input.node),
      input.successors.length,
      ctx.now,
      input.node.moduleId,
      ctx.finishedTtlMs,
    ];
    for (const s of input.successors) args.push(s.message);
    for (const item of input.items) args.push(item);
    return args;
  },
  decode: (reply) => reply.code as CommitResult,
  runs: ({ node }) => [node],
  local(store, keys, { node, owner, version, successors, items }, ctx): CommitResult {
    const now = store.now();
    const rec = readNode(store, keys.node);
    if (!rec) return CommitCode.FENCING_REJECT;
    if (rec.status === 'done')
      return rec.version === version && rec.owner === owner
        ? CommitCode.ALREADY_COMMITTED
        : CommitCode.FENCING_REJECT;
    if (rec.owner !== owner || rec.version !== version) return CommitCode.FENCING_REJECT;
    if (rec.status !== 'processing') return CommitCode.CAS_CONFLICT;
    if (store.exists(keys.gate)) return CommitCode.CAS_CONFLICT;
    // a successor listed twice, or one that exists already, is neither created nor queued again
    const created = new Set<string>();
    const queued: string[] = [];
    successors.forEach((s, i) => {
      const key = keys.successors[i]!;
      if (created.has(key) || store.exists(key)) return;
      created.add(key);
      queued.push(s.message);
    });
    queued.push(...items);
    const seq = readOutboxSequence(store, keys);
    const run = readRun(store, keys.run);
    checkSortedSet(store, keys.leases);
    if (run) checkSortedSet(store, keys.runKeys);
    // every check passed: write
    rec.status = 'done';
    writeNode(store, keys.node, rec, ctx.ttlMs);
    store.set(keys.gate, String(version), ctx.ttlMs);
    for (const key of created) writeNode(store, key, { ...freshNode(), queued: true }, ctx.ttlMs);
    pushOutbox(store, keys, seq, queued, ctx.ttlMs);
    store.zrem(keys.leases, ctx.keys.ptmKey(node));
    if (run) {
      for (const key of created) store.zadd(keys.runKeys, 0, keySuffix(key));
      if (created.size > 0) store.expire(keys.runKeys, ctx.ttlMs);
      const n = items.length;
      const w = { key: keys.run, rec: run, now, finishedTtlMs: ctx.finishedTtlMs };
      const add = { q: created.size, r: -1, d: 1, i: n, ob: n };
      if (writeRun(store, w, { module: node.moduleId, add })) ctx.finished(node.taskId, node.runId);
    }
    return CommitCode.COMMIT_OK;
  },
});
