--[[
  chain_tasks_active (schema 2): the tasks active within a window (most recent first), and
  clean-up of the index.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/tasks-active.ts

  KEYS
    1 active_key   active-task index (zset)
  ARGV
    1 now_arg      now in ms, TEST ONLY ('' in production: the server's TIME)
    2 window_ms    tasks touched within this window are active
    3 max          most task ids
  Returns {0, 'OK', taskId...}. Tasks idle longer than the window are removed from the index.
]]
local active_key = KEYS[1]
local now_arg, window_ms, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
--@include _now
local since = now_ms(now_arg) - window_ms

local ids = redis.call('ZREVRANGEBYSCORE', active_key, '+inf', since, 'LIMIT', 0, max)
redis.call('ZREMRANGEBYSCORE', active_key, '-inf', '(' .. since)
local out = {0, 'OK'}
for i = 1, #ids do out[#out + 1] = ids[i] end
return out
