--[[
  etm_retry_promote (schema 2): move due retries of a task into its outbox, each exactly once.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/retry-promote.ts

  KEYS
    1 retries_key   task retry zset (member: message, score: due ms)
    2 outbox_key    task outbox (list)
  ARGV
    1 now_arg       now in ms, TEST ONLY ('' in production: the server's TIME)
    2 max           most members
    3 ttl           ttl ms of the outbox
  Returns {0, 'OK', member...}: the promoted messages, earliest due first. However many processes
  poll, a due retry is promoted by one of them only; from the outbox it is published like a
  successor (leased, acknowledged), so a promoter that dies after this script loses nothing.
  The first write is RPUSH (memory-checked): on OOM nothing is removed from the retry set. Lists
  of any length go in chunks (Lua's unpack takes ~8,000 values at most), so nothing after the
  first write can fail.
]]
local retries_key, outbox_key = KEYS[1], KEYS[2]
local now_arg, max, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local CHUNK = 1000
--@include _now
local now = now_ms(now_arg)

local due = redis.call('ZRANGEBYSCORE', retries_key, '-inf', now, 'LIMIT', 0, max)
local out = {0, 'OK'}
if #due == 0 then return out end

-- write
for from = 1, #due, CHUNK do
  redis.call('RPUSH', outbox_key, unpack(due, from, math.min(from + CHUNK - 1, #due)))
end
redis.call('PEXPIRE', outbox_key, ttl)
for from = 1, #due, CHUNK do
  redis.call('ZREM', retries_key, unpack(due, from, math.min(from + CHUNK - 1, #due)))
end
for i = 1, #due do out[#out + 1] = due[i] end
return out
