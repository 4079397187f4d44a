/**
 * `ptm_expired_leases`: the nodes of a task whose lease ran out, oldest first — the zombie
 * candidates of `ChainStateStore.recoverExpired`, each then recovered with `recoverZombie`.
 */
import { defineTransition } from '../transition.js';

/** Input: a task and how many ids at most. @internal */
export interface ExpiredLeasesInput {
  /** The task. */
  taskId: string;
  /** Most ids returned. */
  max: number;
}

/** ptm_expired_leases (read-only). @internal */
export const expiredLeases = defineTransition({
  script: 'ptm_expired_leases',
  keys: (k, { taskId }: ExpiredLeasesInput) => ({ leases: k.leases(taskId) }),
  redisKeys: (keys) => [keys.leases],
  args: (input, ctx) => [ctx.now, input.max],
  decode: (reply) => reply.payload.map(String),
  local: (store, keys, { max }) => store.zrangeByScore(keys.leases, -Infinity, store.now(), 0, max),
});
