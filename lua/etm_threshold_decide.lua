-- etm_threshold_decide (schema 1): count a failure at module and task level and decide, in one step.
-- KEYS[1] module error counter   KEYS[2] task error counter
-- KEYS[3] terminate mark of the task   KEYS[4] terminate mark of the module
-- KEYS[5] (optional) the decision mark of this failure (node + attempt): a failure delivered
--         twice (at-least-once queues) is counted once and answers the same decision again
-- ARGV[1] module threshold   ARGV[2] task threshold   ARGV[3] retry-after hint ms   ARGV[4] ttl ms
-- Returns {code, msg, module errors, task errors}; boundary >=, module first, task as backstop:
--   0 CONTINUE   1 RETRY_AFTER (the failure carried a cool-down)   2 TERMINATE_MODULE   3 TERMINATE_TASK
-- An already terminated task/module answers its terminate code without counting again.
local ml, tl, ra, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {3, 'TERMINATE_TASK', tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0')}
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {2, 'TERMINATE_MODULE', tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0')}
end
if KEYS[5] then
  local seen = redis.call('GET', KEYS[5])
  if seen then
    local names = {[0] = 'CONTINUE', [1] = 'RETRY_AFTER', [2] = 'TERMINATE_MODULE', [3] = 'TERMINATE_TASK'}
    local c = tonumber(seen)
    return {c, names[c], tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0')}
  end
end
local m = redis.call('INCR', KEYS[1])
local t = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local code, name = 0, 'CONTINUE'
if m >= ml then code, name = 2, 'TERMINATE_MODULE'
elseif t >= tl then code, name = 3, 'TERMINATE_TASK'
elseif ra > 0 then code, name = 1, 'RETRY_AFTER' end
if KEYS[5] then redis.call('SET', KEYS[5], code, 'PX', ttl) end
return {code, name, m, t}
