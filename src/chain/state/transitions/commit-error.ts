/**
 * `ptm_commit_error`: marks a node failed and records the failure at most once, queueing its
 * ErrorTaskModel in the outbox with it (`ChainStateStore.commitError`); counts the failure in
 * its run (the node stays running there until its failure is decided).
 */
import { CHAIN_SCHEMA_VERSION, CommitErrorCode, type CommitErrorInput } from '../types.js';
import {
  checkSortedSet,
  keySuffix,
  pushOutbox,
  readNode,
  readOutboxSequence,
  writeNode,
} from '../node-record.js';
import { readRun, writeRun } from '../run-record.js';
import { defineTransition } from '../transition.js';

/** Result of an error commit. */
type CommitErrorResult = (typeof CommitErrorCode)[keyof typeof CommitErrorCode];

/** ptm_commit_error. @internal */
export const commitError = defineTransition({
  script: 'ptm_commit_error',
  keys: (k, { node, errorHash }: CommitErrorInput) => ({
    node: k.ptm(node.taskId, node),
    emitMark: k.errorEmit(node.taskId, node, errorHash),
    outbox: k.outbox(node.taskId),
    run: k.run(node.taskId, node.runId),
    runKeys: k.runKeys(node.taskId, node.runId),
    /** Local twin only: the outbox's sequence counter. */
    outboxSeq: k.outboxSequence(node.taskId),
  }),
  redisKeys: (keys) => [keys.node, keys.emitMark, keys.outbox, keys.run, keys.runKeys],
  args: (input, ctx) => [
    input.owner,
    input.version,
    ctx.ttlMs,
    CHAIN_SCHEMA_VERSION,
    input.message ?? '',
    ctx.now,
    input.node.moduleId,
    ctx.finishedTtlMs,
  ],
  decode: (reply) => reply.code as CommitErrorResult,
  local(store, keys, { node, owner, version, message }, ctx): CommitErrorResult {
    const rec = readNode(store, keys.node);
    if (!rec || rec.owner !== owner || rec.version !== version)
      return CommitErrorCode.FENCING_REJECT;
    if (store.exists(keys.emitMark)) return CommitErrorCode.ERROR_ALREADY_EMITTED;
    if (rec.status !== 'processing') return CommitErrorCode.FENCING_REJECT;
    const entries = message === undefined || message === '' ? [] : [message];
    const seq = readOutboxSequence(store, keys);
    const now = store.now();
    const run = readRun(store, keys.run);
    if (run) checkSortedSet(store, keys.runKeys);
    // every check passed: write
    rec.status = 'failed';
    writeNode(store, keys.node, rec, ctx.ttlMs);
    store.set(keys.emitMark, String(version), ctx.ttlMs);
    pushOutbox(store, keys, seq, entries, ctx.ttlMs);
    if (run) {
      store.zadd(keys.runKeys, 0, keySuffix(keys.emitMark));
      store.expire(keys.runKeys, ctx.ttlMs);
      const w = { key: keys.run, rec: run, now, finishedTtlMs: ctx.finishedTtlMs };
      writeRun(store, w, { module: node.moduleId, add: { e: 1 } });
    }
    return CommitErrorCode.ERROR_EMIT_OK;
  },
});
