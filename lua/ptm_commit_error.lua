-- ptm_commit_error (schema 1): mark a node failed and record one failure at most once.
-- KEYS[1] node state   KEYS[2] error emit mark (run, module, step, prefix, error hash)
-- KEYS[3] task outbox (list)   KEYS[4] lease index of the task (zset)
-- ARGV[1] now override (unused)  ARGV[2] owner  ARGV[3] version  ARGV[4] ttl ms  ARGV[5] schema
-- ARGV[6] the ErrorTaskModel to queue in the outbox with the failure ('' for none): it exists
--         exactly when the failure is recorded, and is published from the outbox
-- ARGV[7] this node's id (removed from the lease index)
-- Returns {code, msg}:
--   0 ERROR_EMIT_OK          failure recorded (and ARGV[6], the ErrorTaskModel, queued in the outbox)
--   1 ERROR_ALREADY_EMITTED  this failure was recorded before: emit nothing
--   2 FENCING_REJECT         owner/version is not the current claim, or the node is not processing
local owner, version, ttl, schema = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local f = redis.call('HMGET', KEYS[1], 'status', 'owner', 'version', 'schema')
if f[1] == false then return {2, 'FENCING_REJECT'} end
if tonumber(f[4]) ~= schema then
  return redis.error_reply('SCHEMA_MISMATCH node state has schema ' .. tostring(f[4]) .. ', this version reads ' .. schema)
end
if f[2] ~= owner or tonumber(f[3]) ~= version then return {2, 'FENCING_REJECT'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {1, 'ERROR_ALREADY_EMITTED'} end
if f[1] ~= 'processing' then return {2, 'FENCING_REJECT'} end
redis.call('HSET', KEYS[1], 'status', 'failed')
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
if ARGV[6] ~= nil and ARGV[6] ~= '' then
  redis.call('RPUSH', KEYS[3], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ttl)
end
redis.call('ZREM', KEYS[4], ARGV[7])
return {0, 'ERROR_EMIT_OK'}
