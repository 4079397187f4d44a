/**
 * `ptm_fallback_gate`: allows the fallback of a node once; later calls are refused
 * (`ChainStateStore.tryAllowFallbackOnce`).
 */
import { FallbackCode, type NodeAddress } from '../types.js';
import { defineTransition } from '../transition.js';

/** Result of the fallback gate. */
type FallbackResult = (typeof FallbackCode)[keyof typeof FallbackCode];

/** ptm_fallback_gate. @internal */
export const fallbackGate = defineTransition({
  script: 'ptm_fallback_gate',
  keys: (k, node: NodeAddress) => ({ gate: k.fallbackGate(node.taskId, node) }),
  redisKeys: (keys) => [keys.gate],
  args: (_input, ctx) => [ctx.ttlMs],
  decode: (reply) => reply.code as FallbackResult,
  local: (store, keys, _input, ctx): FallbackResult =>
    store.setNX(keys.gate, '1', ctx.ttlMs) ? FallbackCode.ALLOWED : FallbackCode.REFUSED,
});
