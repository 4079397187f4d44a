/**
 * `chain_lock`: takes or renews a named lock of the deployment (the sweep's)
 * (`ChainStateStore.tryLock`).
 */
import { defineTransition } from '../transition.js';

/** Input: the lock, who takes it, and for how long. @internal */
export interface LockInput {
  /** The lock's name. */
  name: string;
  /** Who takes or renews it. */
  owner: string;
  /** How long it is held without renewal, in ms. */
  ttlMs: number;
}

/** chain_lock. @internal */
export const lock = defineTransition({
  script: 'chain_lock',
  keys: (k, { name }: LockInput) => ({ lock: k.lock(name) }),
  redisKeys: (keys) => [keys.lock],
  args: (input) => [input.owner, input.ttlMs],
  decode: (reply) => reply.code === 0,
  local(store, keys, { owner, ttlMs }): boolean {
    const holder = store.get(keys.lock);
    if (holder !== null && holder !== owner) return false;
    // write: take it, or renew it for its holder
    store.set(keys.lock, owner, ttlMs);
    return true;
  },
});
