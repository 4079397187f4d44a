/**
 * `ptm_claim`: claims a node for execution with a lease and a fencing version
 * (`ChainStateStore.claim`).
 */
import { CHAIN_SCHEMA_VERSION, ClaimCode, type ClaimInput, type ClaimResult } from '../types.js';
import { freshNode, isTerminated, readNode, writeNode } from '../node-record.js';
import { defineTransition } from '../transition.js';

/** ptm_claim. @internal */
export const claim = defineTransition({
  script: 'ptm_claim',
  keys: (k, { node }: ClaimInput) => ({
    node: k.ptm(node.taskId, node),
    terminateTask: k.terminateTask(node.taskId),
    terminateModule: k.terminateModule(node.taskId, node.moduleId),
    leases: k.leases(node.taskId),
  }),
  redisKeys: (keys) => [keys.node, keys.terminateTask, keys.terminateModule, keys.leases],
  args: (input, ctx) => [
    ctx.now,
    input.owner,
    input.leaseMs,
    input.epoch,
    input.root ? '1' : '0',
    CHAIN_SCHEMA_VERSION,
    ctx.ttlMs,
    ctx.keys.ptmKey(input.node),
  ],
  decode: (reply): ClaimResult => ({
    code: reply.code as ClaimResult['code'],
    version: Number(reply.payload[0] ?? 0),
    leaseUntil: Number(reply.payload[1] ?? 0),
    reason: String(reply.payload[2] ?? ''),
  }),
  local(store, keys, { node, owner, leaseMs, epoch, root }, ctx): ClaimResult {
    const result = (code: ClaimResult['code'], version = 0, leaseUntil = 0, reason = '') => ({
      code,
      version,
      leaseUntil,
      reason,
    });
    const now = store.now();
    if (isTerminated(store, keys.terminateTask, keys.terminateModule))
      return result(ClaimCode.STALE_STEP, 0, 0, 'terminated');
    let rec = readNode(store, keys.node);
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
    // every check passed: write
    rec.status = 'processing';
    rec.owner = owner;
    rec.version += 1;
    rec.leaseUntil = now + leaseMs;
    writeNode(store, keys.node, rec, ctx.ttlMs);
    store.zadd(keys.leases, rec.leaseUntil, ctx.keys.ptmKey(node));
    store.expire(keys.leases, ctx.ttlMs);
    return result(ClaimCode.EXECUTE, rec.version, rec.leaseUntil);
  },
});
