--[[
  chain_run_keys (schema 3): entries of a run's key index, for its clean-up.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/run-keys.ts

  KEYS
    1 run_keys_key   the keys the run wrote (zset of key suffixes, score 0)
  ARGV
    1 max            most entries
  Returns {0, 'OK', suffix...}. Writes nothing.
]]
local run_keys_key = KEYS[1]
local max = tonumber(ARGV[1])

local out = {0, 'OK'}
local members = redis.call('ZRANGE', run_keys_key, 0, max - 1)
for i = 1, #members do out[#out + 1] = members[i] end
return out
