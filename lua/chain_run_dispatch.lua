--[[
  chain_run_dispatch (schema 3): the task message of a run was dispatched — the first node of
  each running module is counted queued (q = 1), the other modules are settled (terminated or
  skipped); once per run.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/run-dispatch.ts

  KEYS
    1 run_key         the run's record (hash, see lua/_run.lua)
    2 task_runs_key   the unfinished runs of the task (zset: run id -> start ms)
    3 task_mark_key   the run's terminate mark of the task
    4..               module_mark_keys: the run's terminate mark of each dispatched module, in
                      the order of modules_json
  ARGV
    1 now_arg         now in ms, TEST ONLY ('' in production: the server's TIME)
    2 schema_text     CHAIN_SCHEMA_VERSION
    3 ttl             ttl ms of a new record until the run finishes
    4 run_ttl         ttl ms of the record once the run has finished
    5 task_id         the task
    6 run_id          the run
    7 modules_json    JSON list of [module id, 'running' | 'terminated' | 'skipped']
  Returns {code, msg[, 'run_finished:1']}
    0 DISPATCHED      counted (the record is created when the run was not started)
    1 DUPLICATE       dispatched before: nothing written
  'run_finished:1' when no module runs (the run finishes here).
  A record this call creates, or a module it adds to the record, may meet a terminate mark
  written before: it reads those marks (EXISTS) and sets the record's `x`, so the run's claims
  look for them (see lua/_run.lua).
]]
local run_key, task_runs_key, task_mark_key, FIRST_MODULE_MARK, CHUNK = KEYS[1], KEYS[2], KEYS[3], 4, 1000
local now_arg, schema_text, ttl, run_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local task_id, run_id, modules_json = ARGV[5], ARGV[6], ARGV[7]
--@include _now
--@include _run
local now = now_ms(now_arg)

local f = redis.call('HMGET', run_key, 'state', 'ingress', 'ob', 'mods', 'x')
if f[1] ~= false and f[2] ~= '1' then return {1, 'DUPLICATE'} end
local dispatched = cjson.decode(modules_json)
local mods = cjson.decode(f[4] or '[]')
redis.call('ZCARD', task_runs_key) -- of another type: fails here, before the first write
local known = {}
for i = 1, #mods do known[mods[i]] = true end
-- the marks of what the record does not know yet: the run's (a new record) and its new modules'
local marked = false
if f[5] ~= '1' then
  local unseen = {}
  if f[1] == false then unseen[1] = task_mark_key end
  for i = 1, #dispatched do
    if not known[dispatched[i][1]] then unseen[#unseen + 1] = KEYS[FIRST_MODULE_MARK + i - 1] end
  end
  for from = 1, #unseen, CHUNK do
    if redis.call('EXISTS', unpack(unseen, from, math.min(from + CHUNK - 1, #unseen))) > 0 then marked = true end
  end
end

-- every check passed: write
local now_text = string.format('%d', now)
local run = {key = run_key, module = nil, state = f[1] or 'running', ingress = '0', open = 0,
  ob = tonumber(f[3] or '0'), tm = 0, set = {'ingress', '0'}}
if marked then
  run.set[#run.set + 1] = 'x'
  run.set[#run.set + 1] = '1'
end
if f[1] == false then
  local base = {'schema', schema_text, 'task', task_id, 'run', run_id, 'state', 'running',
    'started', now_text, 'ob', '0'}
  for i = 1, #base do run.set[#run.set + 1] = base[i] end
  redis.call('ZADD', task_runs_key, now_text, run_id)
  redis.call('PEXPIRE', task_runs_key, ttl)
end
for i = 1, #dispatched do
  local m, state = dispatched[i][1], dispatched[i][2]
  if not known[m] then
    known[m] = true
    mods[#mods + 1] = m
  end
  run.set[#run.set + 1] = 's:' .. m
  run.set[#run.set + 1] = state
  if state == 'running' then
    run.open = run.open + 1
    redis.call('HSET', run_key, 'q:' .. m, '1')
  else
    run.tm = run.tm + 1
  end
end
local extra = {'open', string.format('%d', run.open), 'tm', string.format('%d', run.tm),
  'mods', cjson.encode(mods)}
for i = 1, #extra do run.set[#run.set + 1] = extra[i] end
local finished = run_write(run, now, run_ttl, {})
if f[1] == false and not finished then redis.call('PEXPIRE', run_key, ttl) end
if finished then return {0, 'DISPATCHED', RUN_FINISHED .. '1'} end
return {0, 'DISPATCHED'}
