--[[
  ptm_recover_zombie (schema 2): return a node whose lease expired to pending.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/recover-zombie.ts

  KEYS
    1 node_key     node state (hash)
    2 leases_key   lease index of the task (zset)
  ARGV
    1 now_arg      now in ms, TEST ONLY ('' in production: the server's TIME)
    2 node_id      the node's id (its member in the lease index)
  Returns {code, msg}
    0 RECOVERED        the node is pending again
    1 NOT_EXPIRED      the lease is still live; nothing written
    2 NOT_PROCESSING   the node is not being processed (its stale index entry is removed)
  Owner and fencing version are kept: the old owner's late commit meets CAS_CONFLICT (its claim
  was recovered), and FENCING_REJECT once another owner has claimed the node.
]]
local node_key, leases_key = KEYS[1], KEYS[2]
local now_arg, node_id = ARGV[1], ARGV[2]
--@include _now
local now = now_ms(now_arg)

local f = redis.call('HMGET', node_key, 'status', 'lease_until')
if f[1] ~= 'processing' then
  redis.call('ZREM', leases_key, node_id)
  return {2, 'NOT_PROCESSING'}
end
if tonumber(f[2]) > now then return {1, 'NOT_EXPIRED'} end
-- a lease index of another type fails here, not after the first write
redis.call('ZCARD', leases_key)
redis.call('HSET', node_key, 'status', 'pending')
redis.call('ZREM', leases_key, node_id)
return {0, 'RECOVERED'}
