-- ptm_recover_zombie (schema 1): return a node whose lease expired to pending.
-- KEYS[1] node state   ARGV[1] now override (test only)
-- Returns {code, msg}: 0 RECOVERED, 1 NOT_EXPIRED (lease still live), 2 NOT_PROCESSING.
-- Owner and fencing version are kept: the old owner's late commit meets CAS_CONFLICT (its claim was
-- recovered), and FENCING_REJECT once another owner has claimed the node.
--@include _now
local now = now_ms(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'status', 'lease_until')
if f[1] ~= 'processing' then return {2, 'NOT_PROCESSING'} end
if tonumber(f[2]) > now then return {1, 'NOT_EXPIRED'} end
redis.call('HSET', KEYS[1], 'status', 'pending')
return {0, 'RECOVERED'}
