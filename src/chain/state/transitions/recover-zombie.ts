/**
 * `ptm_recover_zombie`: returns a node whose lease expired to `pending`
 * (`ChainStateStore.recoverZombie`). The engine does not call it: a claim takes over an expired
 * lease by itself.
 */
import { RecoverCode } from '../types.js';
import { writeNode, type NodeRecord } from '../node-record.js';
import { defineTransition } from '../transition.js';

/** Input: a node of a task, by id. @internal */
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
  }),
  redisKeys: (keys) => [keys.node],
  args: (_input, ctx) => [ctx.now],
  decode: (reply) => reply.code as RecoverResult,
  local(store, keys, _input, ctx): RecoverResult {
    // reads status and lease only, as the script does (no schema check)
    const text = store.get(keys.node);
    const rec = text === null ? null : (JSON.parse(text) as NodeRecord);
    if (!rec || rec.status !== 'processing') return RecoverCode.NOT_PROCESSING;
    if (rec.leaseUntil > store.now()) return RecoverCode.NOT_EXPIRED;
    // owner and version kept: the old owner's late commit is a CAS_CONFLICT
    rec.status = 'pending';
    writeNode(store, keys.node, rec, ctx.ttlMs);
    return RecoverCode.RECOVERED;
  },
});
