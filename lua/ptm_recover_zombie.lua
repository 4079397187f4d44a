-- ptm_recover_zombie (schema 1): return a node whose lease expired to pending.
-- KEYS[1] node state   KEYS[2] lease index of the task (zset)
-- ARGV[1] now override (test only)   ARGV[2] the node's id (its entry in the lease index)
-- Returns {code, msg}: 0 RECOVERED, 1 NOT_EXPIRED (lease still live), 2 NOT_PROCESSING.
-- Owner and fencing version are kept: the old owner's late commit meets CAS_CONFLICT (its claim was
-- recovered), and FENCING_REJECT once another owner has claimed the node. The node leaves the
-- lease index unless its lease is still live (a later claim puts it back).
--@include _now
local now = now_ms(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'status', 'lease_until')
if f[1] ~= 'processing' then
  redis.call('ZREM', KEYS[2], ARGV[2])
  return {2, 'NOT_PROCESSING'}
end
if tonumber(f[2]) > now then return {1, 'NOT_EXPIRED'} end
redis.call('HSET', KEYS[1], 'status', 'pending')
redis.call('ZREM', KEYS[2], ARGV[2])
return {0, 'RECOVERED'}
