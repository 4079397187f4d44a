/**
 * `ptm_renew_lease`: extends the lease of a node its owner is still running, fenced by owner and
 * version (`ChainStateStore.renewLease`): the heartbeat of a running node.
 */
import { RenewCode, type RenewLeaseInput, type RenewLeaseResult } from '../types.js';
import { CHAIN_SCHEMA_VERSION } from '../types.js';
import { readNode, writeNode } from '../node-record.js';
import { defineTransition } from '../transition.js';

/** ptm_renew_lease. @internal */
export const renewLease = defineTransition({
  script: 'ptm_renew_lease',
  keys: (k, { node }: RenewLeaseInput) => ({
    node: k.ptm(node.taskId, node),
  }),
  redisKeys: (keys) => [keys.node],
  args: (input, ctx) => [ctx.now, input.owner, input.version, input.leaseMs, CHAIN_SCHEMA_VERSION],
  decode: (reply): RenewLeaseResult => ({
    code: reply.code as RenewLeaseResult['code'],
    leaseUntil: Number(reply.payload[0] ?? 0),
  }),
  local(store, keys, { owner, version, leaseMs }, ctx): RenewLeaseResult {
    const rec = readNode(store, keys.node);
    if (!rec || rec.status !== 'processing' || rec.owner !== owner || rec.version !== version)
      return { code: RenewCode.FENCED, leaseUntil: 0 };
    // every check passed: write (the record keeps the TTL it got when it was created)
    rec.leaseUntil = store.now() + leaseMs;
    writeNode(store, keys.node, rec, ctx.ttlMs);
    return { code: RenewCode.RENEWED, leaseUntil: rec.leaseUntil };
  },
});
