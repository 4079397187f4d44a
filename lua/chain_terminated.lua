-- chain_terminated (schema 1): read-only ThresholdPreCheck — is a task or one of its modules terminated?
-- KEYS[1] terminate mark of the task   KEYS[2] terminate mark of the module
-- Returns {code, msg, reason}:
--   0 ACTIVE              neither mark is set
--   1 TASK_TERMINATED     the task is terminated (reason: the mark's value)
--   2 MODULE_TERMINATED   the module is terminated (reason: the mark's value)
-- Writes nothing.
local t = redis.call('GET', KEYS[1])
if t then return {1, 'TASK_TERMINATED', t} end
local m = redis.call('GET', KEYS[2])
if m then return {2, 'MODULE_TERMINATED', m} end
return {0, 'ACTIVE', ''}
