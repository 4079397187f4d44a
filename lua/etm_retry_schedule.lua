--[[
  etm_retry_schedule (schema 3): schedule a retry of a failed node into the task's delayed set;
  the node goes back from running to queued in its run.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/retry-schedule.ts

  KEYS
    1 node_key          node state (hash)
    2 retries_key       task retry zset (member: message, score: due ms)
    3 task_mark_key     terminate mark of the task
    4 module_mark_key   terminate mark of the module
    5 run_key           the run's record (hash, see lua/_run.lua)
  ARGV
    1 now_arg       now in ms, TEST ONLY ('' in production: the server's TIME)
    2 attempt       the retry number; becomes the node's epoch
    3 max_retries   most retries allowed
    4 delay_ms      wait before the retry is due
    5 message       the message to publish when due
    6 allowed       '1' when the failure may be retried
    7 ttl           ttl ms of every key written
    8 schema        CHAIN_SCHEMA_VERSION
    9 module_id     the node's module (its counters in the run)
    10 run_ttl       ttl ms of the run's record once it has finished
  Returns {code, msg[, 'run_finished:1']}
    0 RETRY_SCHEDULED     scheduled (or already scheduled for this attempt: a replay writes nothing)
    1 RETRY_NOT_ALLOWED   not retryable, terminated, missing/done/given-up node, or a live claim holds it
    2 MAX_RETRY_EXCEEDED  attempt > max retries
  Errors: SCHEMA_MISMATCH when another schema wrote the node; WRONGTYPE when a key holds another
  type. Writes only after every check (the types of the keys it writes included).
]]
local node_key, retries_key, task_mark_key, module_mark_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now_arg, attempt, max_retries = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local delay_ms, message, allowed = tonumber(ARGV[4]), ARGV[5], ARGV[6] == '1'
local ttl, schema_text = ARGV[7], ARGV[8]
local run_key, module_id, run_ttl = KEYS[5], ARGV[9], ARGV[10]
--@include _now
--@include _run
local now = now_ms(now_arg)

if not allowed or redis.call('EXISTS', task_mark_key, module_mark_key) > 0 then
  return {1, 'RETRY_NOT_ALLOWED'}
end
if attempt > max_retries then return {2, 'MAX_RETRY_EXCEEDED'} end
local f = redis.call('HMGET', node_key, 'status', 'epoch', 'lease_until', 'schema', 'q', 'final')
-- a node counted failed for good (given up) is not retried
if f[1] == false or f[1] == 'done' or f[6] == '1' then return {1, 'RETRY_NOT_ALLOWED'} end
if tonumber(f[4]) ~= tonumber(schema_text) then
  return redis.error_reply('SCHEMA_MISMATCH node state has schema ' .. tostring(f[4]) .. ', this version reads ' .. schema_text)
end
if tonumber(f[2]) >= attempt then return {0, 'RETRY_SCHEDULED'} end
if f[1] == 'processing' and tonumber(f[3]) > now then return {1, 'RETRY_NOT_ALLOWED'} end
local run = run_read(run_key, module_id)
-- a retry set of another type fails here, not after the first write
redis.call('ZCARD', retries_key)

-- every check passed: write (the node is counted queued: q = '1')
redis.call('HSET', node_key, 'epoch', ARGV[2], 'status', 'pending', 'owner', '', 'q', '1')
redis.call('PEXPIRE', node_key, ttl)
redis.call('ZADD', retries_key, string.format('%d', now + delay_ms), message)
redis.call('PEXPIRE', retries_key, ttl)
if run and f[5] ~= '1' and run_write(run, now, run_ttl, {'r', -1, 'q', 1}) then
  return {0, 'RETRY_SCHEDULED', RUN_FINISHED .. '1'}
end
return {0, 'RETRY_SCHEDULED'}
