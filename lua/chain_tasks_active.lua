-- chain_tasks_active (schema 1): the tasks active within a window (most recent first), and
-- clean-up of the index.
-- KEYS[1] active-task index (zset)   ARGV[1] now override (test only)   ARGV[2] window ms
-- ARGV[3] most task ids
-- Returns {0, 'OK', taskId...}. Tasks idle longer than the window are removed from the index.
--@include _now
local now = now_ms(ARGV[1])
local since = now - tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. since)
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', since, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {0, 'OK'}
for i = 1, #ids do out[#out + 1] = ids[i] end
return out
