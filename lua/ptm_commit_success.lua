-- ptm_commit_success (schema 1): mark a node done and produce its successors and items at most once.
-- KEYS[1] node state   KEYS[2] advance gate   KEYS[3] task outbox (list)   KEYS[4] reorder buffer (hash)
-- KEYS[5..4+n] state of each successor node   KEYS[5+n] lease index of the task (zset)
-- ARGV[1] now override (unused)  ARGV[2] owner  ARGV[3] version  ARGV[4] ttl ms  ARGV[5] schema
-- ARGV[6] n successors   ARGV[7] this node's id (removed from the lease index)
-- then per successor: its ptm id, its message; then the items
-- Returns {code, msg[, successors created]}:
--   0 COMMIT_OK           done; new successors created and queued with the items in the outbox
--   1 FENCING_REJECT      owner/version is not the current claim (or the node was never claimed)
--   2 CAS_CONFLICT        the claim is no longer processing (recovered as a zombie) or the gate is set
--   3 ALREADY_COMMITTED   replay by the same owner and version: nothing written again
-- Reads and checks everything first; writes last. Every written key gets the ttl.
-- Numbers reach redis.call as the ARGV strings: Redis formats a Lua number argument with printf.
local owner, version, ttl, n = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[6])
local schema = tonumber(ARGV[5])
local f = redis.call('HMGET', KEYS[1], 'status', 'owner', 'version', 'schema')
if f[1] == false then return {1, 'FENCING_REJECT'} end
if tonumber(f[4]) ~= schema then
  return redis.error_reply('SCHEMA_MISMATCH node state has schema ' .. tostring(f[4]) .. ', this version reads ' .. schema)
end
local current = tonumber(f[3])
if f[1] == 'done' then
  if current == version and f[2] == owner then return {3, 'ALREADY_COMMITTED'} end
  return {1, 'FENCING_REJECT'}
end
if f[2] ~= owner or current ~= version then return {1, 'FENCING_REJECT'} end
if f[1] ~= 'processing' then return {2, 'CAS_CONFLICT'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2, 'CAS_CONFLICT'} end
-- a successor listed twice in one commit is created and queued once: later copies count as existing
local exists, seen, ids = {}, {}, {}
for i = 1, n do
  local id = ARGV[6 + 2 * i]
  ids[i] = id
  if seen[id] then exists[i] = 1 else
    seen[id] = true
    exists[i] = redis.call('EXISTS', KEYS[4 + i])
  end
end
-- writes (the node record keeps the TTL its claim gave it)
redis.call('HSET', KEYS[1], 'status', 'done')
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
-- the early deliveries parked for the successors are replaced by the messages queued here
if n > 0 then redis.call('HDEL', KEYS[4], unpack(ids)) end
local queued, created = {}, 0
for i = 1, n do
  if exists[i] == 0 then
    redis.call('HSET', KEYS[4 + i], 'status', 'pending', 'owner', '', 'version', '0', 'lease_until', '0',
      'epoch', '0', 'schema', ARGV[5])
    redis.call('PEXPIRE', KEYS[4 + i], ttl)
    queued[#queued + 1] = ARGV[7 + 2 * i]
    created = created + 1
  end
end
for j = 8 + 2 * n, #ARGV do queued[#queued + 1] = ARGV[j] end
-- one RPUSH per 1000 entries (unpack has a bounded stack)
for from = 1, #queued, 1000 do
  redis.call('RPUSH', KEYS[3], unpack(queued, from, math.min(from + 999, #queued)))
end
if #queued > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
redis.call('ZREM', KEYS[5 + n], ARGV[7])
return {0, 'COMMIT_OK', created}
