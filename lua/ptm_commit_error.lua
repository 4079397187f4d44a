--[[
  ptm_commit_error (schema 3): mark a node failed and record one failure at most once; count
  the failure in its run (the node stays running there until its failure is decided).
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/commit-error.ts

  KEYS
    1 node_key       node state (hash)
    2 emit_key       error emit mark (node + error hash)
    3 outbox_key     task outbox (list)
    4 run_key        the run's record (hash, see lua/_run.lua)
    5 run_keys_key   the keys the run wrote (zset of key suffixes), for its clean-up
  ARGV
    1 owner          the claiming owner
    2 version        the fencing version of the claim
    3 ttl            ttl ms of every key written
    4 schema         CHAIN_SCHEMA_VERSION
    5 message        the ErrorTaskModel to queue in the outbox with the failure ('' for none): it
                     exists exactly when the failure is recorded, and is published from the outbox
    6 now_arg        now in ms, TEST ONLY ('' in production: the server's TIME)
    7 module_id      the node's module (its counters in the run)
    8 run_ttl        ttl ms of the run's record once it has finished
  Returns {code, msg}
    0 ERROR_EMIT_OK          failure recorded (and the message queued in the outbox)
    1 ERROR_ALREADY_EMITTED  this failure was recorded before: emit nothing
    2 FENCING_REJECT         owner/version is not the current claim, or the node is not processing
  Errors: SCHEMA_MISMATCH when another schema wrote the node; WRONGTYPE when a key holds another
  type. Writes only after every check (the types of the keys it writes included; the run key
  index's by its ZADD, the first write).
]]
local node_key, emit_key, outbox_key = KEYS[1], KEYS[2], KEYS[3]
local owner, version_text, ttl, schema_text = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local message = ARGV[5]
local now_arg, module_id, run_ttl = ARGV[6], ARGV[7], ARGV[8]
local run_key, run_keys_key = KEYS[4], KEYS[5]
--@include _now
--@include _run

local f = redis.call('HMGET', node_key, 'status', 'owner', 'version', 'schema')
if f[1] == false then return {2, 'FENCING_REJECT'} end
if tonumber(f[4]) ~= tonumber(schema_text) then
  return redis.error_reply('SCHEMA_MISMATCH node state has schema ' .. tostring(f[4]) .. ', this version reads ' .. schema_text)
end
if f[2] ~= owner or tonumber(f[3]) ~= tonumber(version_text) then return {2, 'FENCING_REJECT'} end
if redis.call('EXISTS', emit_key) == 1 then return {1, 'ERROR_ALREADY_EMITTED'} end
if f[1] ~= 'processing' then return {2, 'FENCING_REJECT'} end
local run = run_read(run_key, module_id)
local now = run and now_ms(now_arg) or 0
-- an outbox of another type fails here, not after the first write
redis.call('LLEN', outbox_key)

-- every check passed: write. First the run key index (of another type, its ZADD fails here,
-- before anything is written)
if run then
  redis.call('ZADD', run_keys_key, 0, string.match(emit_key, '}:([^}]*)$'))
  redis.call('PEXPIRE', run_keys_key, ttl)
end
redis.call('HSET', node_key, 'status', 'failed')
redis.call('PEXPIRE', node_key, ttl)
redis.call('SET', emit_key, version_text, 'PX', ttl)
if message ~= '' then
  redis.call('RPUSH', outbox_key, message)
  redis.call('PEXPIRE', outbox_key, ttl)
end
if run then run_write(run, now, run_ttl, {'e', 1}) end
return {0, 'ERROR_EMIT_OK'}
