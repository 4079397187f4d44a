--[[
  etm_terminate_mark (schema 2): mark a task or a module terminated, idempotently.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/terminate-mark.ts

  KEYS
    1 mark_key   terminate mark (of the task, or of one module)
  ARGV
    1 reason     kept as the mark's value
    2 ttl        ttl ms of the mark
  Returns {code, msg}
    0 TERMINATED           first mark
    1 ALREADY_TERMINATED   marked before; nothing written (the first reason and TTL stay)
]]
local mark_key = KEYS[1]
local reason, ttl = ARGV[1], ARGV[2]

if redis.call('SET', mark_key, reason, 'NX', 'PX', ttl) then return {0, 'TERMINATED'} end
return {1, 'ALREADY_TERMINATED'}
