/**
 * `chain_outbox_ack`: forgets outbox entries a relay has published; returns how many were still
 * leased (`ChainStateStore.ackOutbox`).
 */
import { defineTransition } from '../transition.js';

/** Input: the task and the published entries. @internal */
export interface OutboxAckInput {
  /** The task. */
  taskId: string;
  /** The entries, as `takeOutbox` returned them. */
  entries: readonly string[];
}

/** chain_outbox_ack. @internal */
export const outboxAck = defineTransition({
  script: 'chain_outbox_ack',
  keys: (k, { taskId }: OutboxAckInput) => ({ leases: k.outboxLeases(taskId) }),
  redisKeys: (keys) => [keys.leases],
  args: (input) => [...input.entries],
  decode: (reply) => Number(reply.payload[0] ?? 0),
  local(store, keys, { entries }): number {
    let removed = 0;
    for (const e of entries) removed += store.zrem(keys.leases, e);
    return removed;
  },
});
