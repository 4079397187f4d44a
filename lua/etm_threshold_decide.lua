--[[
  etm_threshold_decide (schema 3): count a failure at module and task level, decide, and write
  the terminate marks the decision reaches, in one step; a mark written settles the module (or
  every module) of the failure's run as terminated.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/threshold-decide.ts

  KEYS
    1 module_errors_key   module error counter
    2 task_errors_key     task error counter
    3 task_mark_key       terminate mark of the task
    4 module_mark_key     terminate mark of the module
    5 seen_key            (optional) the decision mark of this failure (node + attempt): a failure
                          delivered twice (at-least-once queues) is counted once and answers the
                          same decision again
    5|6 run_key           (optional) the failure's run's record (hash, see lua/_run.lua)
    6|7 run_keys_key      (optional) the keys the run wrote (zset of key suffixes)
  ARGV
    1 module_threshold    failures of the module at which it is terminated (>=)
    2 task_threshold      failures of the task at which it is terminated (>=)
    3 retry_after_ms      cool-down hint of the failure (> 0 gives RETRY_AFTER)
    4 ttl                 ttl ms of every key written
    5 has_seen            '1' when KEYS[5] is the seen key (the run's keys follow it)
    6 now_arg             now in ms, TEST ONLY ('' in production: the server's TIME)
    7 module_id           the failed module
    8 run_ttl             ttl ms of the run's record once it has finished
  Returns {code, msg, module errors, task errors, module marked, task marked[, 'run_finished:1']}
    0 CONTINUE           below both thresholds
    1 RETRY_AFTER        below both thresholds, the failure carried a cool-down
    2 TERMINATE_MODULE   the module reached its threshold (or was terminated): the module's mark
    3 TERMINATE_TASK     the task reached its threshold (or was terminated): the task's mark, and
                         the module's too when the module reached its threshold as well
  "marked" is 1 when this call wrote that terminate mark (module first, then task). An already
  terminated task/module, or a failure decided before, answers without counting or marking.
]]
local module_errors_key, task_errors_key = KEYS[1], KEYS[2]
local module_threshold, task_threshold = tonumber(ARGV[1]), tonumber(ARGV[2])
local retry_after_ms, ttl, has_seen = tonumber(ARGV[3]), ARGV[4], ARGV[5] == '1'
local now_arg, module_id, run_ttl = ARGV[6], ARGV[7], ARGV[8]
local task_mark_key, module_mark_key = KEYS[3], KEYS[4]
local seen_key, run_key, run_keys_key
if has_seen then
  seen_key, run_key, run_keys_key = KEYS[5], KEYS[6], KEYS[7]
else
  run_key, run_keys_key = KEYS[5], KEYS[6]
end
--@include _now
--@include _run
--@include _run_terminate
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
local run = run_key and run_read(run_key, module_id) or nil
local now = 0
if run then
  now = now_ms(now_arg)
  if task_reached and run.state == 'running' then run_read_modules(run) end
  -- a run key index of another type fails here, not after the first write
  if seen_key then redis.call('ZCARD', run_keys_key) end
end

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
local out = {code, NAMES[code], m, t, module_marked, task_marked}
if run then
  if seen_key then
    redis.call('ZADD', run_keys_key, 0, string.match(seen_key, '}:([^}]*)$'))
    redis.call('PEXPIRE', run_keys_key, ttl)
  end
  -- a mark written: the run's claims look for marks from now on (x)
  if (module_reached or task_reached) and run.state ~= 'running' then redis.call('HSET', run_key, 'x', '1') end
  if (module_reached or task_reached) and run.state == 'running' then
    run.set[#run.set + 1] = 'x'
    run.set[#run.set + 1] = '1'
    run_terminate_running(run, task_reached, module_id)
    if run_write(run, now, run_ttl, {}) then out[7] = RUN_FINISHED .. '1' end
  end
end
return out
