-- etm_retry_schedule (schema 1): schedule a retry of a failed node into the task's delayed set.
-- KEYS[1] node state   KEYS[2] task retry zset (score: due ms)
-- KEYS[3] terminate mark of the task   KEYS[4] terminate mark of the module
-- ARGV[1] now override (test only)  ARGV[2] attempt (becomes the node's epoch)  ARGV[3] max retries
-- ARGV[4] delay ms  ARGV[5] message  ARGV[6] '1' when retry is allowed  ARGV[7] ttl ms  ARGV[8] schema
-- Returns {code, msg}:
--   0 RETRY_SCHEDULED     scheduled (or already scheduled for this attempt: a replay writes nothing)
--   1 RETRY_NOT_ALLOWED   not retryable, terminated, missing/done node, or a live claim holds it
--   2 MAX_RETRY_EXCEEDED  attempt > max retries
--@include _now
local now = now_ms(ARGV[1])
local attempt, max, delay, ttl, schema = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[7], tonumber(ARGV[8])
if ARGV[6] ~= '1' or redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then
  return {1, 'RETRY_NOT_ALLOWED'}
end
if attempt > max then return {2, 'MAX_RETRY_EXCEEDED'} end
local f = redis.call('HMGET', KEYS[1], 'status', 'epoch', 'lease_until', 'schema')
if f[1] == false or f[1] == 'done' then return {1, 'RETRY_NOT_ALLOWED'} end
if tonumber(f[4]) ~= schema then
  return redis.error_reply('SCHEMA_MISMATCH node state has schema ' .. tostring(f[4]) .. ', this version reads ' .. schema)
end
if tonumber(f[2]) >= attempt then return {0, 'RETRY_SCHEDULED'} end
if f[1] == 'processing' and tonumber(f[3]) > now then return {1, 'RETRY_NOT_ALLOWED'} end
redis.call('HSET', KEYS[1], 'epoch', attempt, 'status', 'pending', 'owner', '')
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], now + delay, ARGV[5])
redis.call('PEXPIRE', KEYS[2], ttl)
return {0, 'RETRY_SCHEDULED'}
