--[[
  ptm_expired_leases (schema 2): the nodes of a task whose lease has run out (zombie candidates).
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/expired-leases.ts

  KEYS
    1 leases_key   lease index of the task (zset: node id -> lease end ms)
  ARGV
    1 now_arg      now in ms, TEST ONLY ('' in production: the server's TIME)
    2 max          most ids
  Returns {0, 'OK', nodeId...}, oldest lease first. Writes nothing: the sweep then calls
  ptm_recover_zombie for each, which re-checks the node and removes it from the index.
]]
local leases_key = KEYS[1]
local now_arg, max = ARGV[1], tonumber(ARGV[2])
--@include _now
local now = now_ms(now_arg)

local ids = redis.call('ZRANGEBYSCORE', leases_key, '-inf', now, 'LIMIT', 0, max)
local out = {0, 'OK'}
for i = 1, #ids do out[#out + 1] = ids[i] end
return out
