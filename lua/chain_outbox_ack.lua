--[[
  chain_outbox_ack (schema 2): forget outbox entries a relay has published.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/outbox-ack.ts

  KEYS
    1 leases_key   outbox leases (zset)
  ARGV
    1..            entries: the published entries
  Returns {0, 'OK', removed}: how many entries were still leased. Acknowledging an entry twice,
  or one whose lease moved to another relay, removes it once (the other relay's publication is
  then a harmless duplicate). Any number of entries: ZREM goes in chunks (Lua's unpack takes
  ~8,000 values at most), so nothing after the first write can fail.
]]
local leases_key = KEYS[1]
local CHUNK = 1000

local removed = 0
for from = 1, #ARGV, CHUNK do
  removed = removed + redis.call('ZREM', leases_key, unpack(ARGV, from, math.min(from + CHUNK - 1, #ARGV)))
end
return {0, 'OK', removed}
