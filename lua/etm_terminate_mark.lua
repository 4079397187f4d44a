--[[
  etm_terminate_mark (schema 3): mark a task or a module terminated, idempotently; the run's
  record (when it has one) learns that a mark may exist (x = '1'), so its claims look for it.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/terminate-mark.ts

  KEYS
    1 mark_key   terminate mark (of the task, or of one module)
    2 run_key    the run's record (hash, see lua/_run.lua)
  ARGV
    1 reason     kept as the mark's value
    2 ttl        ttl ms of the mark
  Returns {code, msg}
    0 TERMINATED           first mark
    1 ALREADY_TERMINATED   marked before; nothing written (the first reason and TTL stay)
  Errors: WRONGTYPE when the run's record holds another type (its HSET is the first write:
  nothing is written).
]]
local mark_key, run_key = KEYS[1], KEYS[2]
local reason, ttl = ARGV[1], ARGV[2]

if redis.call('EXISTS', mark_key) == 1 then return {1, 'ALREADY_TERMINATED'} end
if redis.call('EXISTS', run_key) == 1 then redis.call('HSET', run_key, 'x', '1') end
redis.call('SET', mark_key, reason, 'PX', ttl)
return {0, 'TERMINATED'}
