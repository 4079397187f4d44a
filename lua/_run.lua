-- Run counters (schema 3). A run's record is one hash in its task's slot: `state` ('running',
-- 'done', 'terminated', 'cancelled'), `started`/`updated`/`finished` (ms), `ingress` ('1' until
-- the task message dispatched the modules), `open` (modules not settled), `tm` (modules settled
-- other than done), `ob` (items waiting in the outbox), `mods` (JSON list of module ids) and per
-- module `s:<m>` (state) and the counters `q:<m>` `r:<m>` `d:<m>` `f:<m>` `i:<m>` `e:<m>`; `x`
-- ('1' once a terminate mark of the run may exist: the scripts that write a mark set it, so the
-- claim of a node of a run without it needs no EXISTS of the marks).
-- A transition reads with run_read before its first write and writes with run_write after its
-- checks; a run with no record (a node published without one, or expired) is not counted.

-- run_read(run_key, module_id, counters): what a transition needs to count a node of the run
-- (module_id nil: the run's own fields only), or nil when the run has no record. `counters`
-- names the module's counters the transition reads and changes: RUN_QR (q and r), RUN_QRDI (q, r,
-- d and i), nil for all six (run_write reads q and r, and any counter it changes). Per call cost
-- matters here: the fields go straight to HMGET (no more of them than the transition uses), the
-- tables are built by constructors, at their size (and the numbers convert by arithmetic, half
-- the cost of tonumber, and the same value: a field that is not a number, which no script
-- writes, fails the script here, before its first write).
local RUN_QR, RUN_QRDI = 'qr', 'qrdi'
local function run_read(run_key, module_id, counters)
  local f
  if module_id == nil then
    f = redis.call('HMGET', run_key, 'state', 'ingress', 'open', 'ob', 'tm', 'x')
  elseif counters == RUN_QR then
    f = redis.call('HMGET', run_key, 'state', 'ingress', 'open', 'ob', 'tm', 'x', 's:' .. module_id,
      'q:' .. module_id, 'r:' .. module_id)
  elseif counters == RUN_QRDI then
    f = redis.call('HMGET', run_key, 'state', 'ingress', 'open', 'ob', 'tm', 'x', 's:' .. module_id,
      'q:' .. module_id, 'r:' .. module_id, 'd:' .. module_id, 'i:' .. module_id)
  else
    f = redis.call('HMGET', run_key, 'state', 'ingress', 'open', 'ob', 'tm', 'x', 's:' .. module_id,
      'q:' .. module_id, 'r:' .. module_id, 'd:' .. module_id, 'f:' .. module_id, 'i:' .. module_id,
      'e:' .. module_id)
  end
  if f[1] == false then return nil end
  -- c: the module's counters (run_write writes them back in one HSET); set: the HSET's field/value
  -- list, its array part sized by the constructor (16 slots, all nil: #set is 0)
  local c
  if module_id == nil then
    c = {}
  elseif counters == RUN_QR then
    c = {q = (f[8] or '0') + 0, r = (f[9] or '0') + 0}
  elseif counters == RUN_QRDI then
    c = {q = (f[8] or '0') + 0, r = (f[9] or '0') + 0, d = (f[10] or '0') + 0,
      i = (f[11] or '0') + 0}
  else
    c = {q = (f[8] or '0') + 0, r = (f[9] or '0') + 0, d = (f[10] or '0') + 0,
      f = (f[11] or '0') + 0, i = (f[12] or '0') + 0, e = (f[13] or '0') + 0}
  end
  return {key = run_key, module = module_id, state = f[1], ingress = f[2] or '0',
    open = (f[3] or '0') + 0, ob = (f[4] or '0') + 0, tm = (f[5] or '0') + 0,
    marked = f[6] == '1', s = f[7] or 'running', c = c,
    set = {nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}}
end

-- RUN_FINISHED .. i in a reply: this call finished the script's i-th run (the caller cleans up).
local RUN_FINISHED = 'run_finished:'

-- run_write(run, now, finished_ttl, changes): adds `changes` (flat list: counter letter, delta;
-- 'ob' is the run's) to the run's module (the values run_read read, written with the rest in one
-- HSET: a script is atomic, so nothing changed them in between), settles the module as 'done' when it has nothing
-- queued or running, and finishes the run when every module is settled and no item waits in
-- the outbox. Returns the run id marker when this call finished the run, else nil.
-- run_apply(run, changes): adds `changes` to the record read, to be written by the next run_write
-- (which settles and finishes with them as if they were its own).
local function run_apply(run, changes)
  for i = 1, #changes, 2 do
    local letter, delta = changes[i], changes[i + 1]
    if letter == 'ob' then
      run.ob = run.ob + delta
      run.set[#run.set + 1] = 'ob'
      run.set[#run.set + 1] = string.format('%d', run.ob)
    elseif delta ~= 0 then
      local v = run.c[letter] + delta
      run.c[letter] = v
      run.set[#run.set + 1] = letter .. ':' .. run.module
      run.set[#run.set + 1] = string.format('%d', v)
    end
  end
end

local function run_write(run, now, finished_ttl, changes)
  run_apply(run, changes)
  if run.module ~= nil and run.s == 'running' and run.ingress == '0' and run.c.q <= 0 and run.c.r <= 0 then
    run.s = 'done'
    run.open = run.open - 1
    run.set[#run.set + 1] = 's:' .. run.module
    run.set[#run.set + 1] = 'done'
    run.set[#run.set + 1] = 'open'
    run.set[#run.set + 1] = string.format('%d', run.open)
  end
  local now_text = string.format('%d', now)
  run.set[#run.set + 1] = 'updated'
  run.set[#run.set + 1] = now_text
  local finished = false
  if run.state == 'running' and run.ingress == '0' and run.open <= 0 and run.ob <= 0 then
    finished = true
    run.state = run.tm > 0 and 'terminated' or 'done'
    run.set[#run.set + 1] = 'state'
    run.set[#run.set + 1] = run.state
    run.set[#run.set + 1] = 'finished'
    run.set[#run.set + 1] = now_text
  end
  redis.call('HSET', run.key, unpack(run.set, 1, #run.set))
  run.set = {}
  if finished then
    redis.call('PEXPIRE', run.key, finished_ttl)
    return true
  end
  return false
end
