--[[
  ptm_claim (schema 3): claim a node for execution with a lease and a fencing version; count it
  running in its run; refuse the nodes of a cancelled run.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/claim.ts

  KEYS
    1 node_key          node state (hash: status, owner, version, lease_until, epoch, schema)
    2 task_mark_key     terminate mark of the task
    3 module_mark_key   terminate mark of the module
    4 run_key           the run's record (hash, see lua/_run.lua)
    5 run_keys_key      the keys the run wrote (zset of key suffixes), for its clean-up
  ARGV
    1 now_arg     now in ms, TEST ONLY ('' in production: the server's TIME)
    2 owner       who claims
    3 lease_ms    lease length
    4 epoch       the retry epoch the message carries
    5 root        '1' for a module's first node (no parent creates it)
    6 schema      CHAIN_SCHEMA_VERSION
    7 ttl         ttl ms of a new record
    8 module_id   the node's module (its counters in the run)
    9 run_ttl     ttl ms of the run's record once it has finished
  Returns {code, msg, version, lease_until, reason[, 'run_finished:1']}
    0 EXECUTE          claimed (or replayed by the same owner within its lease); reason 'expired'
                       when the claim took over a lease that had run out (its holder died or
                       stalled: the version bump fences it)
    1 DUPLICATE_DONE   the node is done
    2 STALE_STEP       run cancelled, task/module terminated, an older epoch, or the node failed in
                       this epoch (reason 'cancelled', 'terminated', 'old_epoch', 'failed')
    3 OUT_OF_ORDER     the node does not exist yet (parent not committed) or a newer epoch
    4 LOCKED_BY_OTHER  another owner holds a live lease
  A node leaves `queued` for `running` in its run when a root is created or a node counted
  queued (field q = '1') is claimed; a terminated task/module settles the run's module(s) the
  first time a claim meets the mark; 'run_finished:1' when that finished the run.
  Errors: SCHEMA_MISMATCH when another schema wrote the node; WRONGTYPE when a key holds another
  type. Writes only on EXECUTE (and the run's record on a terminate mark), after every check
  (the types of the keys it writes included).
]]
local node_key, task_mark_key, module_mark_key = KEYS[1], KEYS[2], KEYS[3]
local now_arg, owner, lease_ms, epoch = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local root, schema_text, ttl = ARGV[5] == '1', ARGV[6], ARGV[7]
local run_key, run_keys_key, module_id, run_ttl = KEYS[4], KEYS[5], ARGV[8], ARGV[9]
local schema = tonumber(schema_text)
--@include _now
--@include _run
--@include _run_terminate
-- Numbers reach redis.call as strings where they can (ARGV as given, one string.format per
-- computed value): Redis formats a Lua number argument with printf, which costs more than the write.
local now = now_ms(now_arg)

local run = run_read(run_key, module_id, RUN_QR)
if run and run.state == 'cancelled' then return {2, 'STALE_STEP', 0, 0, 'cancelled'} end
-- a run whose record has no `x` has no terminate mark (every script that writes one sets it)
if (run == nil or run.marked) and redis.call('EXISTS', task_mark_key, module_mark_key) > 0 then
  local out = {2, 'STALE_STEP', 0, 0, 'terminated'}
  if run and run.state == 'running' then
    -- the run learns here that its module (or its whole task) was terminated
    local terminate = {}
    if redis.call('EXISTS', task_mark_key) == 1 then
      run_read_modules(run)
      for i = 1, #run.mods do
        if run.mods[i][2] == 'running' then terminate[#terminate + 1] = run.mods[i][1] end
      end
    elseif run.s == 'running' then
      terminate[1] = module_id
    end
    for i = 1, #terminate do run_terminate_module(run, terminate[i], 'terminated') end
    if #terminate > 0 and run_write(run, now, run_ttl, {}) then out[6] = RUN_FINISHED .. '1' end
  end
  return out
end
local f = redis.call('HMGET', node_key, 'status', 'owner', 'version', 'lease_until', 'epoch', 'schema', 'q')
local status = f[1]
local version, lease_until, rec_epoch = 0, 0, 0
if status == false then
  if not root then return {3, 'OUT_OF_ORDER', 0, 0, ''} end
  status = 'pending'
else
  if tonumber(f[6]) ~= schema then
    return redis.error_reply('SCHEMA_MISMATCH node state has schema ' .. tostring(f[6]) .. ', this version reads ' .. schema_text)
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

-- a run key index of another type fails here, not after the first write
if run and f[1] == false then redis.call('ZCARD', run_keys_key) end

-- every check passed: write
local from_queue = f[1] == false or f[7] == '1'
version = version + 1
lease_until = now + lease_ms
local until_text = string.format('%d', lease_until)
if f[1] == false then
  -- a new root: its epoch is 0 (the message's epoch equals the record's, checked above)
  redis.call('HSET', node_key, 'status', 'processing', 'owner', owner, 'version', string.format('%d', version),
    'lease_until', until_text, 'epoch', '0', 'schema', schema_text)
  redis.call('PEXPIRE', node_key, ttl)
else
  -- epoch and schema are kept (both were checked equal above), and so is the TTL the record got
  -- when it was created
  redis.call('HSET', node_key, 'status', 'processing', 'owner', owner, 'version', string.format('%d', version),
    'lease_until', until_text, 'q', '0')
end
local out = {0, 'EXECUTE', version, lease_until, status == 'processing' and 'expired' or ''}
if run then
  if f[1] == false then
    redis.call('ZADD', run_keys_key, 0, string.match(node_key, '}:([^}]*)$'))
    redis.call('PEXPIRE', run_keys_key, ttl)
  end
  if from_queue and run_write(run, now, run_ttl, {'q', -1, 'r', 1}) then out[6] = RUN_FINISHED .. '1' end
end
return out
