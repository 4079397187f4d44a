--[[
  chain_lock (schema 2): take or renew a named lock of the deployment (e.g. the sweep's).
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/lock.ts

  KEYS
    1 lock_key   the lock
  ARGV
    1 owner      who takes or renews it
    2 ttl_ms     how long it is held without renewal
  Returns {code, msg}
    0 ACQUIRED   taken, or renewed by its holder
    1 HELD       another owner has it; nothing written
  Nothing releases a lock: it expires when its holder stops renewing it.
]]
local lock_key = KEYS[1]
local owner, ttl_ms = ARGV[1], ARGV[2]

local holder = redis.call('GET', lock_key)
if holder and holder ~= owner then return {1, 'HELD'} end
redis.call('SET', lock_key, owner, 'PX', ttl_ms)
return {0, 'ACQUIRED'}
