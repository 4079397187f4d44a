--[[
  chain_run_expire (schema 3): one step of the clean-up of a finished run.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/run-expire.ts

  KEYS
    1 run_keys_key    the keys the run wrote (zset of key suffixes)
    2 task_runs_key   the unfinished runs of the task (zset)
    3..2+n            keys: the keys named by the entries done (node, gates, marks, requests)
    3+n..             task_keys: the task's own keys, given with the last entries only
  ARGV
    1 run_ttl         the finished-run TTL in ms
    2 run_id          the run
    3 n               number of keys
    4 last            '1' with the last entries: the run leaves the task's unfinished runs, and
                      the task's keys get run_ttl when no other run of the task is unfinished
    5..               entries: the index entries done (removed from the index)
  Returns {0, 'OK', keys shortened}. A key gets run_ttl only when it has no TTL or a longer one
  (PEXPIRE … LT on Redis 7, PTTL first on 6.2), so a clean-up never lengthens a TTL; missing keys
  are skipped. The entries leave the index in one ZREM per 1,000, the script's first write.
]]
local run_keys_key, task_runs_key = KEYS[1], KEYS[2]
local run_ttl_text, run_id, n, last = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local run_ttl = tonumber(run_ttl_text)
local FIRST_KEY, FIRST_ENTRY, CHUNK = 3, 5, 1000

-- Redis 7 shortens a TTL in one command (PEXPIRE … LT, where a key without a TTL counts as one
-- with an infinite TTL); Redis 6.2 (no LT) reads the TTL first
local LT = (redis.REDIS_VERSION_NUM or 0) >= 0x070000
local function shorten(key)
  if LT then return redis.call('PEXPIRE', key, run_ttl_text, 'LT') end
  local pttl = redis.call('PTTL', key)
  if pttl == -2 or (pttl ~= -1 and pttl <= run_ttl) then return 0 end
  redis.call('PEXPIRE', key, run_ttl_text)
  return 1
end

-- a run list of another type fails here, before the first write; the index needs no check: its
-- ZREM is the first write (a script that fails on its first write wrote nothing), and without
-- entries it is not written
if last then redis.call('ZCARD', task_runs_key) end
for from = FIRST_ENTRY, #ARGV, CHUNK do
  redis.call('ZREM', run_keys_key, unpack(ARGV, from, math.min(from + CHUNK - 1, #ARGV)))
end
local shortened = 0
for i = FIRST_KEY, FIRST_KEY + n - 1 do shortened = shortened + shorten(KEYS[i]) end
if last then
  redis.call('ZREM', task_runs_key, run_id)
  if redis.call('ZCARD', task_runs_key) == 0 then
    for i = FIRST_KEY + n, #KEYS do shortened = shortened + shorten(KEYS[i]) end
  end
end
return {0, 'OK', shortened}
