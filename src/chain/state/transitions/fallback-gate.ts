/**
 * `ptm_fallback_gate`: allows the fallback of a node once; later calls are refused
 * (`ChainStateStore.tryAllowFallbackOnce`). The gate is named in its run's key index, so the
 * run's clean-up shortens it.
 */
import { FallbackCode, type NodeAddress } from '../types.js';
import { checkSortedSet, keySuffix } from '../node-record.js';
import { defineTransition } from '../transition.js';

/** Result of the fallback gate. */
type FallbackResult = (typeof FallbackCode)[keyof typeof FallbackCode];

/** ptm_fallback_gate. @internal */
export const fallbackGate = defineTransition({
  script: 'ptm_fallback_gate',
  keys: (k, node: NodeAddress) => ({
    gate: k.fallbackGate(node.taskId, node),
    runKeys: k.runKeys(node.taskId, node.runId),
  }),
  redisKeys: (keys) => [keys.gate, keys.runKeys],
  args: (_input, ctx) => [ctx.ttlMs],
  decode: (reply) => reply.code as FallbackResult,
  local(store, keys, _input, ctx): FallbackResult {
    if (store.exists(keys.gate)) return FallbackCode.REFUSED;
    checkSortedSet(store, keys.runKeys);
    store.zadd(keys.runKeys, 0, keySuffix(keys.gate));
    store.expire(keys.runKeys, ctx.ttlMs);
    store.set(keys.gate, '1', ctx.ttlMs);
    return FallbackCode.ALLOWED;
  },
});
