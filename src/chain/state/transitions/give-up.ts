/**
 * `ptm_give_up`: a failed node whose failure was decided not to be retried (given up, or
 * stopped by a threshold) is counted failed for good in its run, once (`ChainStateStore.giveUp`).
 */
import { CHAIN_SCHEMA_VERSION, type NodeAddress } from '../types.js';
import { readNode, writeNode } from '../node-record.js';
import { readRun, writeRun } from '../run-record.js';
import { defineTransition } from '../transition.js';

/** Input: the failed node and the attempt of its ErrorTaskModel. @internal */
export interface GiveUpInput {
  /** The node. */
  node: NodeAddress;
  /** The ErrorTaskModel's attempt (the node's epoch + 1). */
  attempt: number;
}

/** ptm_give_up. @internal */
export const giveUp = defineTransition({
  script: 'ptm_give_up',
  keys: (k, { node }: GiveUpInput) => ({
    node: k.ptm(node.taskId, node),
    run: k.run(node.taskId, node.runId),
  }),
  redisKeys: (keys) => [keys.node, keys.run],
  args: (input, ctx) => [
    ctx.now,
    input.attempt,
    CHAIN_SCHEMA_VERSION,
    input.node.moduleId,
    ctx.finishedTtlMs,
  ],
  decode: (reply) => reply.code === 0,
  runs: ({ node }) => [node],
  local(store, keys, { node, attempt }, ctx): boolean {
    const now = store.now();
    const rec = readNode(store, keys.node);
    if (!rec || rec.status !== 'failed' || rec.final === true || rec.epoch !== attempt - 1)
      return false;
    const run = readRun(store, keys.run);
    // every check passed: write
    rec.final = true;
    writeNode(store, keys.node, rec, ctx.ttlMs);
    if (run) {
      const w = { key: keys.run, rec: run, now, finishedTtlMs: ctx.finishedTtlMs };
      if (writeRun(store, w, { module: node.moduleId, add: { r: -1, f: 1 } }))
        ctx.finished(node.taskId, node.runId);
    }
    return true;
  },
});
