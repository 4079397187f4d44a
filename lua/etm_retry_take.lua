-- etm_retry_take (schema 1): take due retries; each member is returned to one caller only.
-- KEYS[1] task retry zset   ARGV[1] now override (test only)   ARGV[2] most members
-- Returns {0, 'OK', member...}.
--@include _now
local now = now_ms(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
local out = {0, 'OK'}
for i = 1, #due do out[#out + 1] = due[i] end
return out
