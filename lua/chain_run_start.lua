--[[
  chain_run_start (schema 3): record a submitted run with its modules, running and waiting for
  its task message to be dispatched (ingress = '1').
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/run-start.ts

  KEYS
    1 run_key         the run's record (hash, see lua/_run.lua)
    2 task_runs_key   the unfinished runs of the task (zset: run id -> start ms)
    3..               mark_keys: the run's terminate marks (the task's, then each module's)
  ARGV
    1 now_arg         now in ms, TEST ONLY ('' in production: the server's TIME)
    2 schema_text     CHAIN_SCHEMA_VERSION
    3 ttl             ttl ms of the record until the run finishes
    4 task_id         the task
    5 run_id          the run
    6 modules_json    JSON list of the run's module ids (distinct)
  Returns {code, msg}
    0 STARTED         the record was created
    1 EXISTS          the run has a record: nothing written
  A mark written before the run's record (a terminate of a run not started yet) sets its `x`,
  so its claims look for the marks (see lua/_run.lua).
]]
local run_key, task_runs_key, FIRST_MARK_KEY, CHUNK = KEYS[1], KEYS[2], 3, 1000
local now_arg, schema_text, ttl, task_id, run_id, modules_json = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
--@include _now
local now = now_ms(now_arg)

if redis.call('EXISTS', run_key) == 1 then return {1, 'EXISTS'} end
local mods = cjson.decode(modules_json)
redis.call('ZCARD', task_runs_key) -- of another type: fails here, before the first write
local marked = false
for from = FIRST_MARK_KEY, #KEYS, CHUNK do
  if redis.call('EXISTS', unpack(KEYS, from, math.min(from + CHUNK - 1, #KEYS))) > 0 then marked = true end
end

-- every check passed: write
local now_text = string.format('%d', now)
local fields = {'schema', schema_text, 'task', task_id, 'run', run_id, 'state', 'running',
  'started', now_text, 'updated', now_text, 'ingress', '1', 'open', string.format('%d', #mods),
  'tm', '0', 'ob', '0', 'mods', modules_json}
for i = 1, #mods do
  fields[#fields + 1] = 's:' .. mods[i]
  fields[#fields + 1] = 'running'
end
if marked then
  fields[#fields + 1] = 'x'
  fields[#fields + 1] = '1'
end
redis.call('HSET', run_key, unpack(fields, 1, #fields))
redis.call('PEXPIRE', run_key, ttl)
redis.call('ZADD', task_runs_key, now_text, run_id)
redis.call('PEXPIRE', task_runs_key, ttl)
return {0, 'STARTED'}
