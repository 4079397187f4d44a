-- chain_outbox_take (schema 1): lease entries of a task's outbox to one relay.
-- KEYS[1] outbox (list, commit order)   KEYS[2] outbox leases (zset: entry -> lease end ms)
-- ARGV[1] now override (test only; '' in production)   ARGV[2] most entries   ARGV[3] lease ms
-- ARGV[4] ttl ms
-- Returns {0, 'OK', entry...}: first entries whose lease ran out (their relay died before it
-- acknowledged them), then new entries in commit order. Each returned entry is leased until
-- now + lease; `chain_outbox_ack` removes it once published. An entry is therefore published at
-- least once, and by one relay at a time while its lease runs.
-- The first write is ZADD (memory-checked): an out-of-memory server refuses the script before
-- anything is moved, so no entry is ever popped and dropped.
--@include _now
local now = now_ms(ARGV[1])
local max, lease, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
-- the lease end as text once: Redis formats a Lua number argument with printf
local until_text = string.format('%d', now + lease)
local out = {0, 'OK'}
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, max)
for i = 1, #expired do
  redis.call('ZADD', KEYS[2], until_text, expired[i])
  out[#out + 1] = expired[i]
end
local room = max - #expired
if room > 0 then
  local fresh = redis.call('LRANGE', KEYS[1], 0, room - 1)
  for i = 1, #fresh do
    redis.call('ZADD', KEYS[2], until_text, fresh[i])
    out[#out + 1] = fresh[i]
  end
  if #fresh > 0 then redis.call('LTRIM', KEYS[1], #fresh, -1) end
end
if #out > 2 then redis.call('PEXPIRE', KEYS[2], ttl) end
return out
