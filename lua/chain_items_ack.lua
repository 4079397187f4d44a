--[[
  chain_items_ack (schema 3): acknowledge items of the items stream that were handed to onItem
  (or set aside), and stop waiting for them in their runs, which may finish with them.
  TypeScript side (keys, arguments, reply): src/chain/state/transitions/items-ack.ts

  KEYS
    1 items_key    the items stream (entries added by ptm_commit_success's hand-off)
    2..            run_keys: the records of the runs of the items (hash, see lua/_run.lua)
  ARGV
    1 group        the consumer group of the items stream
    2 now_arg      now in ms, TEST ONLY ('' in production: the server's TIME)
    3 run_ttl      ttl ms of a run's record once it has finished
    4 n            number of entries
    5..4+n         ids: the stream entry ids
    5+n..4+2n      run_index: for each entry, the KEYS position - 1 of its run (0: none)
  Returns {0, 'OK', acknowledged[, 'run_finished:<i>'...]}: how many entries were still pending
  (an entry acknowledged twice, by two consumers after a take-over or named twice in one call,
  counts once in its run), and which runs (1-based among run_keys) this call finished. The
  entries are deleted from the stream. The entries of each run are acknowledged by one XACK, whose
  answer (how many of them were still pending) is what the run counts; so a batch costs one XACK
  per run in it and one XDEL per 1,000 entries. Reads first (the stream's type with XLEN, the
  runs), then writes: the XDEL first (it checks every id it names: a malformed one fails it, and
  the script, before anything is written; past 1,000 entries every id is checked beforehand, its
  form by a pattern and its range by an XRANGE, a read),
  then the XACKs, which cannot fail.
]]
local items_key = KEYS[1]
local group, now_arg, run_ttl, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local FIRST_ID, CHUNK = 5, 1000
--@include _now
--@include _run
--@include _run_items

redis.call('XLEN', items_key)
local runs = run_read_from(2)
local now = #KEYS > 1 and now_ms(now_arg) or 0

-- the ids by run (index 0: no run), in first-seen order
local by_run, order = {}, {}
for i = FIRST_ID, FIRST_ID + n - 1 do
  local j = ARGV[i + n] + 0
  local list = by_run[j]
  if list == nil then
    list = {}
    by_run[j] = list
    order[#order + 1] = j
  end
  list[#list + 1] = ARGV[i]
end
-- more ids than one XDEL takes: each is checked here, as the first write checks those it names
if n > CHUNK then
  for i = FIRST_ID, FIRST_ID + n - 1 do
    local id = ARGV[i]
    if not (string.find(id, '^%d+$') or string.find(id, '^%d+%-%d+$')) then
      return redis.error_reply('ERR Invalid stream ID specified as stream command argument: ' .. id)
    end
    -- the form is right; XRANGE (a read) parses it as XDEL and XACK will, ranges included
    redis.call('XRANGE', items_key, id, id)
  end
end

-- write: the entries deleted first (the first XDEL checks its ids; an entry deleted stays in the
-- group's pending list until acknowledged), then each run's entries acknowledged
for from = FIRST_ID, FIRST_ID + n - 1, CHUNK do
  redis.call('XDEL', items_key, unpack(ARGV, from, math.min(from + CHUNK - 1, FIRST_ID + n - 1)))
end
local acknowledged = 0
local delivered = {}
for k = 1, #order do
  local j = order[k]
  local list = by_run[j]
  local acked = 0
  for from = 1, #list, CHUNK do
    acked = acked + redis.call('XACK', items_key, group, unpack(list, from, math.min(from + CHUNK - 1, #list)))
  end
  acknowledged = acknowledged + acked
  if j > 0 and acked > 0 then delivered[j] = acked end
end
local out = {0, 'OK', acknowledged}
run_items_delivered(runs, delivered, now, run_ttl, out)
return out
