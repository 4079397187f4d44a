/**
 * `chain_outbox_take`: leases outbox entries of a task to one relay — first entries whose lease
 * ran out, then new ones in commit order (`ChainStateStore.takeOutbox`).
 */
import { outboxEntry } from '../node-record.js';
import { defineTransition } from '../transition.js';

/** Input: the task, most entries and the lease. @internal */
export interface OutboxTakeInput {
  /** The task. */
  taskId: string;
  /** Most entries returned. */
  max: number;
  /** Lease of each returned entry, in ms. */
  leaseMs: number;
}

/** chain_outbox_take. @internal */
export const outboxTake = defineTransition({
  script: 'chain_outbox_take',
  keys: (k, { taskId }: OutboxTakeInput) => ({
    outbox: k.outbox(taskId),
    leases: k.outboxLeases(taskId),
  }),
  redisKeys: (keys) => [keys.outbox, keys.leases],
  args: (input, ctx) => [ctx.now, input.max, input.leaseMs, ctx.ttlMs],
  decode: (reply) => reply.payload.map(String),
  local(store, keys, { max, leaseMs }, ctx): string[] {
    const now = store.now();
    const expired = store.zrangeByScore(keys.leases, -Infinity, now, 0, max);
    const room = max - expired.length;
    const fresh = room > 0 ? store.zrangeByScore(keys.outbox, -Infinity, Infinity, 0, room) : [];
    // write
    const until = now + leaseMs;
    const out = expired;
    for (const e of expired) store.zadd(keys.leases, until, e);
    for (const member of fresh) {
      const entry = outboxEntry(member);
      store.zrem(keys.outbox, member);
      store.zadd(keys.leases, until, entry);
      out.push(entry);
    }
    if (out.length > 0) store.expire(keys.leases, ctx.ttlMs);
    return out;
  },
});
