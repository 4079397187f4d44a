--[[
  etm_threshold_decide (schema 2): count a failure at module and task level, decide, and write
  the terminate marks the decision reaches, in one step.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/threshold-decide.ts

  KEYS
    1 module_errors_key   module error counter
    2 task_errors_key     task error counter
    3 task_mark_key       terminate mark of the task
    4 module_mark_key     terminate mark of the module
    5 seen_key            (optional) the decision mark of this failure (node + attempt): a failure
                          delivered twice (at-least-once queues) is counted once and answers the
                          same decision again
  ARGV
    1 module_threshold    failures of the module at which it is terminated (>=)
    2 task_threshold      failures of the task at which it is terminated (>=)
    3 retry_after_ms      cool-down hint of the failure (> 0 gives RETRY_AFTER)
    4 ttl                 ttl ms of every key written
  Returns {code, msg, module errors, task errors, module marked, task marked}
    0 CONTINUE           below both thresholds
    1 RETRY_AFTER        below both thresholds, the failure carried a cool-down
    2 TERMINATE_MODULE   the module reached its threshold (or was terminated): the module's mark
    3 TERMINATE_TASK     the task reached its threshold (or was terminated): the task's mark, and
                         the module's too when the module reached its threshold as well
  "marked" is 1 when this call wrote that terminate mark (module first, then task). An already
  terminated task/module, or a failure decided before, answers without counting or marking.
]]
local module_errors_key, task_errors_key = KEYS[1], KEYS[2]
local task_mark_key, module_mark_key, seen_key = KEYS[3], KEYS[4], KEYS[5]
local module_threshold, task_threshold = tonumber(ARGV[1]), tonumber(ARGV[2])
local retry_after_ms, ttl = tonumber(ARGV[3]), ARGV[4]
local NAMES = {[0] = 'CONTINUE', [1] = 'RETRY_AFTER', [2] = 'TERMINATE_MODULE', [3] = 'TERMINATE_TASK'}

local counts = redis.call('MGET', module_errors_key, task_errors_key)
local m, t = tonumber(counts[1] or '0'), tonumber(counts[2] or '0')
if redis.call('EXISTS', task_mark_key) == 1 then return {3, NAMES[3], m, t, 0, 0} end
if redis.call('EXISTS', module_mark_key) == 1 then return {2, NAMES[2], m, t, 0, 0} end
if seen_key then
  local seen = redis.call('GET', seen_key)
  if seen then
    local code = tonumber(seen)
    return {code, NAMES[code], m, t, 0, 0}
  end
end
m, t = m + 1, t + 1
local module_reached, task_reached = m >= module_threshold, t >= task_threshold
local code = 0
if task_reached then code = 3
elseif module_reached then code = 2
elseif retry_after_ms > 0 then code = 1 end

-- every check passed: write (counters, then the module's mark, then the task's)
local m_text, t_text = string.format('%d', m), string.format('%d', t)
redis.call('SET', module_errors_key, m_text, 'PX', ttl)
redis.call('SET', task_errors_key, t_text, 'PX', ttl)
local counted = '(module ' .. m_text .. ', task ' .. t_text .. ')'
local module_marked, task_marked = 0, 0
if module_reached then
  redis.call('SET', module_mark_key, 'threshold: module errors reached ' .. counted, 'PX', ttl)
  module_marked = 1
end
if task_reached then
  redis.call('SET', task_mark_key, 'threshold: task errors reached ' .. counted, 'PX', ttl)
  task_marked = 1
end
if seen_key then redis.call('SET', seen_key, code, 'PX', ttl) end
return {code, NAMES[code], m, t, module_marked, task_marked}
