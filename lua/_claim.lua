-- claim_node(...): the claim of one node, as ptm_claim documents it (its codes, its reply, its
-- writes); ptm_commit_success runs it too, for the next node of the committing worker (one script
-- per node). Needs _run and _run_terminate. Reads and checks everything before its first write,
-- so an error raised by a check (WRONGTYPE) leaves nothing written by it. Numbers reach
-- redis.call as strings where they can (one string.format per computed value): Redis formats a
-- Lua number argument with printf, which costs more than the write. On EXECUTE it returns, after
-- its reply, whether it left its node's count to the shared record (see ptm_commit_success) and
-- the version and lease texts it wrote (the commit's reply reuses them). Texts that are equal are
-- equal numbers: the checks compare the texts first and convert only when they differ.
local function claim_node(node_key, task_mark_key, module_mark_key, run_key, run_keys_key, now,
                          owner, lease_ms, epoch_text, root, schema_text, ttl, module_id, run_ttl, shared)
  local run = shared or run_read(run_key, module_id, RUN_QR)
  if run and run.state == 'cancelled' then return {2, 'STALE_STEP', 0, 0, 'cancelled'} end
  -- a run whose record has no `x` has no terminate mark (every script that writes one sets it)
  if (run == nil or run.marked) and redis.call('EXISTS', task_mark_key, module_mark_key) > 0 then
    local out = {2, 'STALE_STEP', 0, 0, 'terminated'}
    if run and run.state == 'running' then
      -- the run learns here that its module (or its whole task) was terminated
      local whole_task = redis.call('EXISTS', task_mark_key) == 1
      if whole_task then run_read_modules(run) end
      if run_terminate_running(run, whole_task, module_id) > 0 and run_write(run, now, run_ttl, {}) then
        out[6] = RUN_FINISHED .. '1'
      end
    end
    return out
  end
  local f = redis.call('HMGET', node_key, 'status', 'owner', 'version', 'lease_until', 'epoch', 'schema', 'q')
  local status = f[1]
  local version = 0
  if status == false then
    if not root then return {3, 'OUT_OF_ORDER', 0, 0, ''} end
    status = 'pending'
  else
    if f[6] ~= schema_text and tonumber(f[6]) ~= tonumber(schema_text) then
      return redis.error_reply('SCHEMA_MISMATCH node state has schema ' .. tostring(f[6]) .. ', this version reads ' .. schema_text)
    end
    version = tonumber(f[3])
  end
  if status == 'done' then return {1, 'DUPLICATE_DONE', version, 0, ''} end
  local rec_epoch_text = f[1] == false and '0' or f[5]
  if rec_epoch_text ~= epoch_text then
    local epoch, rec_epoch = tonumber(epoch_text), tonumber(rec_epoch_text)
    if epoch < rec_epoch then return {2, 'STALE_STEP', version, 0, 'old_epoch'} end
    if epoch > rec_epoch then return {3, 'OUT_OF_ORDER', version, 0, ''} end
  end
  if status == 'failed' then return {2, 'STALE_STEP', version, 0, 'failed'} end
  if status == 'processing' then
    local lease_until = tonumber(f[4])
    if lease_until > now then
      if f[2] == owner then return {0, 'EXECUTE', version, lease_until, ''} end
      return {4, 'LOCKED_BY_OTHER', version, lease_until, ''}
    end
  end

  -- a run key index of another type fails here, not after the first write
  if run and f[1] == false then redis.call('ZCARD', run_keys_key) end

  -- every check passed: write
  local from_queue = f[1] == false or f[7] == '1'
  version = version + 1
  local lease_until = now + lease_ms
  local version_text, until_text = string.format('%d', version), string.format('%d', lease_until)
  if f[1] == false then
    -- a new root: its epoch is 0 (the message's epoch equals the record's, checked above)
    redis.call('HSET', node_key, 'status', 'processing', 'owner', owner, 'version', version_text,
      'lease_until', until_text, 'epoch', '0', 'schema', schema_text)
    redis.call('PEXPIRE', node_key, ttl)
  else
    -- epoch and schema are kept (both were checked equal above), and so is the TTL the record got
    -- when it was created
    redis.call('HSET', node_key, 'status', 'processing', 'owner', owner, 'version', version_text,
      'lease_until', until_text, 'q', '0')
  end
  local out = {0, 'EXECUTE', version, lease_until, status == 'processing' and 'expired' or ''}
  if run then
    if f[1] == false then
      redis.call('ZADD', run_keys_key, 0, string.match(node_key, '}:([^}]*)$'))
      redis.call('PEXPIRE', run_keys_key, ttl)
    end
    if from_queue and shared then return out, true, version_text, until_text end
    if from_queue and run_write(run, now, run_ttl, {'q', -1, 'r', 1}) then out[6] = RUN_FINISHED .. '1' end
  end
  return out, false, version_text, until_text
end
