--[[
  chain_terminated (schema 2): read-only ThresholdPreCheck — is a task or one of its modules
  terminated?
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/terminated.ts

  KEYS
    1 task_mark_key     terminate mark of the task
    2 module_mark_key   terminate mark of the module
  ARGV
    none
  Returns {code, msg, reason}
    0 ACTIVE              neither mark is set (reason '')
    1 TASK_TERMINATED     the task is terminated (reason: the mark's value)
    2 MODULE_TERMINATED   the module is terminated (reason: the mark's value)
  Writes nothing.
]]
local task_mark_key, module_mark_key = KEYS[1], KEYS[2]

local task_reason = redis.call('GET', task_mark_key)
if task_reason then return {1, 'TASK_TERMINATED', task_reason} end
local module_reason = redis.call('GET', module_mark_key)
if module_reason then return {2, 'MODULE_TERMINATED', module_reason} end
return {0, 'ACTIVE', ''}
