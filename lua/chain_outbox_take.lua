--[[
  chain_outbox_take (schema 2): lease entries of a task's outbox to one relay.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/outbox-take.ts

  KEYS
    1 outbox_key   task outbox (list, commit order)
    2 leases_key   outbox leases (zset: entry -> lease end ms)
  ARGV
    1 now_arg      now in ms, TEST ONLY ('' in production: the server's TIME)
    2 max          most entries
    3 lease_ms     lease of each returned entry
    4 ttl          ttl ms of the leases
  Returns {0, 'OK', entry...}: first entries whose lease ran out (their relay died before it
  acknowledged them), then new entries in commit order. Each returned entry is leased until
  now + lease; chain_outbox_ack removes it once published. An entry is therefore published at
  least once, and by one relay at a time while its lease runs.
  Reads first, then writes; the first write is ZADD (memory-checked): an out-of-memory server
  refuses the script before anything is moved, so no entry is ever popped and dropped.
]]
local outbox_key, leases_key = KEYS[1], KEYS[2]
local now_arg, max, lease_ms, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
--@include _now
local now = now_ms(now_arg)

local expired = redis.call('ZRANGEBYSCORE', leases_key, '-inf', now, 'LIMIT', 0, max)
local room = max - #expired
local fresh = {}
if room > 0 then fresh = redis.call('LRANGE', outbox_key, 0, room - 1) end

-- write (the lease end as text once: Redis formats a Lua number argument with printf)
local until_text = string.format('%d', now + lease_ms)
local out = {0, 'OK'}
for i = 1, #expired do
  redis.call('ZADD', leases_key, until_text, expired[i])
  out[#out + 1] = expired[i]
end
for i = 1, #fresh do
  redis.call('ZADD', leases_key, until_text, fresh[i])
  out[#out + 1] = fresh[i]
end
if #fresh > 0 then redis.call('LTRIM', outbox_key, #fresh, -1) end
if #out > 2 then redis.call('PEXPIRE', leases_key, ttl) end
return out
