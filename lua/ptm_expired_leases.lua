-- ptm_expired_leases (schema 1): the nodes of a task whose lease has run out (zombie candidates).
-- KEYS[1] lease index of the task (zset: node id -> lease end ms)
-- ARGV[1] now override (test only)   ARGV[2] most ids
-- Returns {0, 'OK', nodeId...}, oldest lease first. Writes nothing: the sweep then calls
-- ptm_recover_zombie for each, which re-checks the node and removes it from the index.
--@include _now
local now = now_ms(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {0, 'OK'}
for i = 1, #ids do out[#out + 1] = ids[i] end
return out
