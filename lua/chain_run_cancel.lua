--[[
  chain_run_cancel (schema 3): cancel a running run; ptm_claim then refuses its nodes.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/run-cancel.ts

  KEYS
    1 run_key         the run's record (hash, see lua/_run.lua)
  ARGV
    1 now_arg         now in ms, TEST ONLY ('' in production: the server's TIME)
    2 run_ttl         ttl ms of the record once the run has finished
  Returns {code, msg[, 'run_finished:1']}
    0 CANCELLED          state 'cancelled', finished now; the record expires after run_ttl
    1 ALREADY_FINISHED   done, terminated or cancelled before: nothing written
    2 NOT_FOUND          no record: nothing written
]]
local run_key = KEYS[1]
local now_arg, run_ttl = ARGV[1], ARGV[2]
--@include _now
local now = now_ms(now_arg)

local state = redis.call('HGET', run_key, 'state')
if state == false then return {2, 'NOT_FOUND'} end
if state ~= 'running' then return {1, 'ALREADY_FINISHED'} end

-- every check passed: write
local now_text = string.format('%d', now)
redis.call('HSET', run_key, 'state', 'cancelled', 'finished', now_text, 'updated', now_text)
redis.call('PEXPIRE', run_key, run_ttl)
return {0, 'CANCELLED', 'run_finished:1'}
