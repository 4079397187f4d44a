--[[
  ptm_recover_zombie (schema 2): return a node whose lease expired to pending.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/recover-zombie.ts

  KEYS
    1 node_key     node state (hash)
  ARGV
    1 now_arg      now in ms, TEST ONLY ('' in production: the server's TIME)
  Returns {code, msg}
    0 RECOVERED        the node is pending again
    1 NOT_EXPIRED      the lease is still live; nothing written
    2 NOT_PROCESSING   the node is not being processed; nothing written
  Owner and fencing version are kept: the old owner's late commit meets CAS_CONFLICT (its claim
  was recovered), and FENCING_REJECT once another owner has claimed the node. The engine does
  not call it: a claim takes over an expired lease by itself.
]]
local node_key = KEYS[1]
local now_arg = ARGV[1]
--@include _now
local now = now_ms(now_arg)

local f = redis.call('HMGET', node_key, 'status', 'lease_until')
if f[1] ~= 'processing' then return {2, 'NOT_PROCESSING'} end
if tonumber(f[2]) > now then return {1, 'NOT_EXPIRED'} end
redis.call('HSET', node_key, 'status', 'pending')
return {0, 'RECOVERED'}
