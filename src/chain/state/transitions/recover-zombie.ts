/**
 * `ptm_recover_zombie`: returns a node whose lease expired to `pending`
 * (`ChainStateStore.recoverZombie`, and each node of `recoverExpired`).
 */
import { RecoverCode } from '../types.js';
import { checkSortedSet, writeNode, type NodeRecord } from '../node-record.js';
import { defineTransition } from '../transition.js';

/** Input: a node of a task, by id (the lease index holds ids). @internal */
export interface RecoverZombieInput {
  /** The task. */
  taskId: string;
  /** The node's id (`ChainKeyBuilder.ptmKey`). */
  nodeId: string;
}

/** Result of a recovery. */
type RecoverResult = (typeof RecoverCode)[keyof typeof RecoverCode];

/** ptm_recover_zombie. @internal */
export const recoverZombie = defineTransition({
  script: 'ptm_recover_zombie',
  keys: (k, { taskId, nodeId }: RecoverZombieInput) => ({
    node: k.ptmById(taskId, nodeId),
    leases: k.leases(taskId),
  }),
  redisKeys: (keys) => [keys.node, keys.leases],
  args: (input, ctx) => [ctx.now, input.nodeId],
  decode: (reply) => reply.code as RecoverResult,
  local(store, keys, { nodeId }, ctx): RecoverResult {
    // reads status and lease only, as the script does (no schema check)
    const text = store.get(keys.node);
    const rec = text === null ? null : (JSON.parse(text) as NodeRecord);
    if (!rec || rec.status !== 'processing') {
      store.zrem(keys.leases, nodeId); // a stale index entry
      return RecoverCode.NOT_PROCESSING;
    }
    if (rec.leaseUntil > store.now()) return RecoverCode.NOT_EXPIRED;
    checkSortedSet(store, keys.leases);
    // owner and version kept: the old owner's late commit is a CAS_CONFLICT
    rec.status = 'pending';
    writeNode(store, keys.node, rec, ctx.ttlMs);
    store.zrem(keys.leases, nodeId);
    return RecoverCode.RECOVERED;
  },
});
