-- ptm_claim (schema 1): claim a node for execution with a lease and a fencing version.
-- KEYS[1] node state (hash: status, owner, version, lease_until, epoch, schema)
-- KEYS[2] terminate mark of the task     KEYS[3] terminate mark of the module
-- ARGV[1] now ms override (test only; '' in production)   ARGV[2] owner   ARGV[3] lease ms
-- KEYS[4] lease index of the task (zset: node id -> lease end), read by the zombie sweep
-- ARGV[4] epoch carried by the message   ARGV[5] '1' for a root node   ARGV[6] schema   ARGV[7] ttl ms
-- ARGV[8] the node id (its ptm key hash)
-- Returns {code, msg, version, lease_until, reason}:
--   0 EXECUTE          claimed (or replayed by the same owner within its lease)
--   1 DUPLICATE_DONE   the node is done
--   2 STALE_STEP       task/module terminated, an older epoch, or the node failed in this epoch
--   3 OUT_OF_ORDER     the node does not exist yet (parent not committed) or a newer epoch
--   4 LOCKED_BY_OTHER  another owner holds a live lease
-- Errors: SCHEMA_MISMATCH when the node was written by another schema. Writes only on EXECUTE.
--@include _now
-- Numbers reach redis.call as strings where they can (ARGV as given, one tostring per computed
-- value): Redis formats a Lua number argument with printf, which costs more than the write.
local now = now_ms(ARGV[1])
local owner, lease, epoch, root = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
local schema, ttl = tonumber(ARGV[6]), ARGV[7]
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then
  return {2, 'STALE_STEP', 0, 0, 'terminated'}
end
local f = redis.call('HMGET', KEYS[1], 'status', 'owner', 'version', 'lease_until', 'epoch', 'schema')
local status = f[1]
local version, lease_until, rec_epoch = 0, 0, 0
if status == false then
  if not root then return {3, 'OUT_OF_ORDER', 0, 0, ''} end
  status = 'pending'
else
  if tonumber(f[6]) ~= schema then
    return redis.error_reply('SCHEMA_MISMATCH node state has schema ' .. tostring(f[6]) .. ', this version reads ' .. schema)
  end
  version, lease_until, rec_epoch = tonumber(f[3]), tonumber(f[4]), tonumber(f[5])
end
if status == 'done' then return {1, 'DUPLICATE_DONE', version, 0, ''} end
if epoch < rec_epoch then return {2, 'STALE_STEP', version, 0, 'old_epoch'} end
if epoch > rec_epoch then return {3, 'OUT_OF_ORDER', version, 0, ''} end
if status == 'failed' then return {2, 'STALE_STEP', version, 0, 'failed'} end
if status == 'processing' and lease_until > now then
  if f[2] == owner then return {0, 'EXECUTE', version, lease_until, ''} end
  return {4, 'LOCKED_BY_OTHER', version, lease_until, ''}
end
version = version + 1
lease_until = now + lease
local until_text = string.format('%d', lease_until)
if f[1] == false then
  -- a new root: its epoch is 0 (the message's epoch equals the record's, checked above)
  redis.call('HSET', KEYS[1], 'status', 'processing', 'owner', owner, 'version', string.format('%d', version),
    'lease_until', until_text, 'epoch', '0', 'schema', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  -- epoch and schema are kept (both were checked equal above), and so is the TTL the record got
  -- when it was created
  redis.call('HSET', KEYS[1], 'status', 'processing', 'owner', owner, 'version', string.format('%d', version),
    'lease_until', until_text)
end
redis.call('ZADD', KEYS[4], until_text, ARGV[8])
redis.call('PEXPIRE', KEYS[4], ttl)
return {0, 'EXECUTE', version, lease_until, ''}
