--[[
  ptm_give_up (schema 3): count a failed node failed for good in its run, once — its failure
  was decided not to be retried (given up, or stopped by a threshold).
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/give-up.ts

  KEYS
    1 node_key     node state (hash)
    2 run_key      the run's record (hash, see lua/_run.lua)
  ARGV
    1 now_arg      now in ms, TEST ONLY ('' in production: the server's TIME)
    2 attempt      the ErrorTaskModel's attempt (the node's epoch + 1)
    3 schema       CHAIN_SCHEMA_VERSION
    4 module_id    the node's module (its counters in the run)
    5 run_ttl      ttl ms of the run's record once it has finished
  Returns {code, msg[, 'run_finished:1']}
    0 GIVEN_UP     the node is marked final (field final = '1'); its run counts it failed
    1 UNCHANGED    not a failed node of that attempt, or counted before: nothing written
  Errors: SCHEMA_MISMATCH when another schema wrote the node. Writes only after every check.
]]
local node_key, run_key = KEYS[1], KEYS[2]
local now_arg, attempt, schema_text = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local module_id, run_ttl = ARGV[4], ARGV[5]
--@include _now
--@include _run

local f = redis.call('HMGET', node_key, 'status', 'epoch', 'final', 'schema')
if f[1] == false then return {1, 'UNCHANGED'} end
if tonumber(f[4]) ~= tonumber(schema_text) then
  return redis.error_reply('SCHEMA_MISMATCH node state has schema ' .. tostring(f[4]) .. ', this version reads ' .. schema_text)
end
if f[1] ~= 'failed' or f[3] == '1' or tonumber(f[2]) ~= attempt - 1 then return {1, 'UNCHANGED'} end
local run = run_read(run_key, module_id)
local now = run and now_ms(now_arg) or 0

-- every check passed: write (the node record keeps its TTL)
redis.call('HSET', node_key, 'final', '1')
if run and run_write(run, now, run_ttl, {'r', -1, 'f', 1}) then
  return {0, 'GIVEN_UP', RUN_FINISHED .. '1'}
end
return {0, 'GIVEN_UP'}
