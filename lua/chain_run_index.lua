--[[
  chain_run_index (schema 3): add keys a node wrote outside the transitions (its persisted
  requests) to its run's key index, when the index exists (the run has a record).
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/run-index.ts

  KEYS
    1 run_keys_key   the keys the run wrote (zset of key suffixes, score 0; keeps its TTL)
  ARGV
    1..              suffixes: the key suffixes to add
  Returns {0, 'OK', added}. Writes nothing when the index does not exist; at most 1,000 suffixes
  per ZADD (Lua's unpack takes ~8,000 values at most).
]]
local run_keys_key = KEYS[1]
local CHUNK = 1000

if redis.call('EXISTS', run_keys_key) == 0 then return {0, 'OK', 0} end
local added = 0
for from = 1, #ARGV, CHUNK do
  local zargs = {}
  for i = from, math.min(from + CHUNK - 1, #ARGV) do
    zargs[#zargs + 1] = '0'
    zargs[#zargs + 1] = ARGV[i]
  end
  added = added + redis.call('ZADD', run_keys_key, unpack(zargs, 1, #zargs))
end
return {0, 'OK', added}
