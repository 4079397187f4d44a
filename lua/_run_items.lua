-- Run helpers for the scripts that settle items of several runs at once (after --@include _run).

-- run_read_from(first): the records of the runs named by KEYS[first..] (nil where a run has no
-- record; `n` holds how many were named), read before any write, for scripts that settle items of several runs at once.
local function run_read_from(first)
  local runs = {n = #KEYS - first + 1}
  for j = first, #KEYS do runs[j - first + 1] = run_read(KEYS[j], nil) end
  return runs
end

-- run_items_delivered(runs, delivered, now, finished_ttl, out): stops the runs waiting for the
-- items they were handed (`delivered[j]` items of runs[j]: 'ob' - delivered[j]) and appends
-- RUN_FINISHED .. j to `out` for each run that this finished. A write helper.
local function run_items_delivered(runs, delivered, now, finished_ttl, out)
  for j = 1, runs.n do
    if runs[j] and delivered[j] and run_write(runs[j], now, finished_ttl, {'ob', -delivered[j]}) then
      out[#out + 1] = RUN_FINISHED .. j
    end
  end
end
