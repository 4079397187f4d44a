-- Run helpers for the transitions that settle modules as terminated (after --@include _run).

-- run_read_modules(run): reads every module's state (for a task-wide terminate), before writes.
local function run_read_modules(run)
  local mods = cjson.decode(redis.call('HGET', run.key, 'mods') or '[]')
  local fields = {}
  for i = 1, #mods do fields[i] = 's:' .. mods[i] end
  run.mods = {}
  if #fields > 0 then
    local states = redis.call('HMGET', run.key, unpack(fields, 1, #fields))
    for i = 1, #mods do run.mods[i] = {mods[i], states[i] or 'running'} end
  end
end

-- run_terminate_module(run, module_id, state): settles a module that is still running as
-- `state` ('terminated'); a write helper (call after the checks).
local function run_terminate_module(run, module_id, state)
  run.set[#run.set + 1] = 's:' .. module_id
  run.set[#run.set + 1] = state
  run.open = run.open - 1
  run.tm = run.tm + 1
  run.set[#run.set + 1] = 'open'
  run.set[#run.set + 1] = string.format('%d', run.open)
  run.set[#run.set + 1] = 'tm'
  run.set[#run.set + 1] = string.format('%d', run.tm)
  if module_id == run.module then run.s = state end
end

-- run_terminate_running(run, whole_task, module_id): settles as 'terminated' the modules still
-- running: every one (run_read_modules read them first) when the whole task was terminated, else
-- module_id when it runs; returns how many it settled. A write helper (call after the checks).
local function run_terminate_running(run, whole_task, module_id)
  local settled = 0
  if whole_task then
    for i = 1, #run.mods do
      if run.mods[i][2] == 'running' then
        run_terminate_module(run, run.mods[i][1], 'terminated')
        settled = settled + 1
      end
    end
  elseif run.s == 'running' then
    run_terminate_module(run, module_id, 'terminated')
    settled = 1
  end
  return settled
end
