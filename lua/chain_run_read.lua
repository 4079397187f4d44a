--[[
  chain_run_read (schema 3): read a run's record.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/run-read.ts

  KEYS
    1 run_key     the run's record (hash, see lua/_run.lua)
  ARGV
    none
  Returns {code, msg, field, value, ...}
    0 OK          the record's fields and values (HGETALL)
    1 NOT_FOUND   no record
  Writes nothing.
]]
local run_key = KEYS[1]

local h = redis.call('HGETALL', run_key)
if #h == 0 then return {1, 'NOT_FOUND'} end
local out = {0, 'OK'}
for i = 1, #h do out[#out + 1] = h[i] end
return out
