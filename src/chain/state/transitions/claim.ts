/**
 * `ptm_claim`: claims a node for execution with a lease and a fencing version
 * (`ChainStateStore.claim`); counts the node running in its run, and refuses the nodes of a
 * cancelled run.
 */
import { CHAIN_SCHEMA_VERSION, ClaimCode, type ClaimInput, type ClaimResult } from '../types.js';
import {
  checkSortedSet,
  freshNode,
  isTerminated,
  keySuffix,
  readNode,
  withoutQueued,
  writeNode,
} from '../node-record.js';
import { readRun, writeRun } from '../run-record.js';
import { defineTransition } from '../transition.js';

/** ptm_claim. @internal */
export const claim = defineTransition({
  script: 'ptm_claim',
  keys: (k, { node }: ClaimInput) => ({
    node: k.ptm(node.taskId, node),
    terminateTask: k.terminateTask(node.taskId, node.runId),
    terminateModule: k.terminateModule(node.taskId, node.runId, node.moduleId),
    run: k.run(node.taskId, node.runId),
    runKeys: k.runKeys(node.taskId, node.runId),
  }),
  redisKeys: (keys) => [
    keys.node,
    keys.terminateTask,
    keys.terminateModule,
    keys.run,
    keys.runKeys,
  ],
  args: (input, ctx) => [
    ctx.now,
    input.owner,
    input.leaseMs,
    input.epoch,
    input.root ? '1' : '0',
    CHAIN_SCHEMA_VERSION,
    ctx.ttlMs,
    input.node.moduleId,
    ctx.finishedTtlMs,
  ],
  decode: (reply): ClaimResult => ({
    code: reply.code as ClaimResult['code'],
    version: Number(reply.payload[0] ?? 0),
    leaseUntil: Number(reply.payload[1] ?? 0),
    reason: String(reply.payload[2] ?? ''),
  }),
  runs: ({ node }) => [node],
  local(store, keys, { node, owner, leaseMs, epoch, root }, ctx): ClaimResult {
    const result = (code: ClaimResult['code'], version = 0, leaseUntil = 0, reason = '') => ({
      code,
      version,
      leaseUntil,
      reason,
    });
    const now = store.now();
    const run = readRun(store, keys.run);
    const w = run && { key: keys.run, rec: run, now, finishedTtlMs: ctx.finishedTtlMs };
    if (run?.state === 'cancelled') return result(ClaimCode.STALE_STEP, 0, 0, 'cancelled');
    if (isTerminated(store, keys.terminateTask, keys.terminateModule)) {
      if (w && run.state === 'running') {
        // the run learns here that its module (or its whole task) was terminated
        const all = store.exists(keys.terminateTask);
        const terminate = all ? Object.keys(run.modules) : [node.moduleId];
        if (writeRun(store, w, { terminate })) ctx.finished(node.taskId, node.runId);
      }
      return result(ClaimCode.STALE_STEP, 0, 0, 'terminated');
    }
    let rec = readNode(store, keys.node);
    const created = !rec;
    if (!rec) {
      if (!root) return result(ClaimCode.OUT_OF_ORDER);
      rec = freshNode();
    }
    if (rec.status === 'done') return result(ClaimCode.DUPLICATE_DONE, rec.version);
    if (epoch < rec.epoch) return result(ClaimCode.STALE_STEP, rec.version, 0, 'old_epoch');
    if (epoch > rec.epoch) return result(ClaimCode.OUT_OF_ORDER, rec.version);
    if (rec.status === 'failed') return result(ClaimCode.STALE_STEP, rec.version, 0, 'failed');
    if (rec.status === 'processing' && rec.leaseUntil > now) {
      if (rec.owner === owner) return result(ClaimCode.EXECUTE, rec.version, rec.leaseUntil); // replay
      return result(ClaimCode.LOCKED_BY_OTHER, rec.version, rec.leaseUntil);
    }
    if (w && created) checkSortedSet(store, keys.runKeys);
    // every check passed: write
    const expired = rec.status === 'processing'; // a lease that ran out, taken over
    const fromQueue = created || rec.queued === true;
    rec.status = 'processing';
    rec.owner = owner;
    rec.version += 1;
    rec.leaseUntil = now + leaseMs;
    // (a copy without the field rather than `delete`, which makes the object slow to write)
    if (rec.queued !== undefined) rec = withoutQueued(rec);
    writeNode(store, keys.node, rec, ctx.ttlMs);
    if (w && created) {
      store.zadd(keys.runKeys, 0, keySuffix(keys.node));
      store.expire(keys.runKeys, ctx.ttlMs);
    }
    if (w && fromQueue && writeRun(store, w, { module: node.moduleId, add: { q: -1, r: 1 } }))
      ctx.finished(node.taskId, node.runId);
    return result(ClaimCode.EXECUTE, rec.version, rec.leaseUntil, expired ? 'expired' : '');
  },
});
