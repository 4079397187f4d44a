--[[
  chain_items_ack (schema 3): acknowledge items of the items stream that were handed to onItem
  (or set aside), and stop waiting for them in their runs, which may finish with them.
  TypeScript side (keys, arguments, reply): src/chain/state/transitions/items-ack.ts

  KEYS
    1 items_key    the items stream (entries added by ptm_commit_success's hand-off)
    2..            run_keys: the records of the runs of the items (hash, see lua/_run.lua)
  ARGV
    1 group        the consumer group of the items stream
    2 consumer     the acknowledging consumer
    3 now_arg      now in ms, TEST ONLY ('' in production: the server's TIME)
    4 run_ttl      ttl ms of a run's record once it has finished
    5 n            number of entries
    6..5+n         ids: the stream entry ids
    6+n..5+2n      run_index: for each entry, the KEYS position - 1 of its run (0: none)
  Returns {0, 'OK', acknowledged[, 'run_finished:<i>'...]}: how many entries were still pending
  (an entry acknowledged twice, by two consumers after a take-over, counts once in its run),
  and which runs (1-based among run_keys) this call finished. The entries are deleted from the
  stream. Which entries are still pending is learnt with one XCLAIM … JUSTID to the acknowledging
  consumer (it answers the ids in the group's pending list), so a batch costs one XCLAIM, one XACK
  and one XDEL per 1,000 entries, whatever its size. Reads first (the stream's type with XLEN,
  the runs), then writes.
]]
local items_key = KEYS[1]
local group, consumer, now_arg, run_ttl, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local FIRST_ID, CHUNK = 6, 1000
--@include _now
--@include _run
--@include _run_items

redis.call('XLEN', items_key)
local runs = run_read_from(2)
local now = #KEYS > 1 and now_ms(now_arg) or 0

-- write
local acknowledged = 0
local delivered = {}
for from = FIRST_ID, FIRST_ID + n - 1, CHUNK do
  local last = math.min(from + CHUNK - 1, FIRST_ID + n - 1)
  local claim = {items_key, group, consumer, '0'}
  local ids = {}
  for i = from, last do
    claim[#claim + 1] = ARGV[i]
    ids[#ids + 1] = ARGV[i]
  end
  claim[#claim + 1] = 'JUSTID'
  local pending = {}
  for _, id in ipairs(redis.call('XCLAIM', unpack(claim, 1, #claim))) do pending[id] = true end
  local acked = {}
  for i = from, last do
    if pending[ARGV[i]] then
      acked[#acked + 1] = ARGV[i]
      local j = tonumber(ARGV[i + n])
      if j > 0 then delivered[j] = (delivered[j] or 0) + 1 end
    end
  end
  if #acked > 0 then acknowledged = acknowledged + redis.call('XACK', items_key, group, unpack(acked, 1, #acked)) end
  redis.call('XDEL', items_key, unpack(ids, 1, #ids))
end
local out = {0, 'OK', acknowledged}
run_items_delivered(runs, delivered, now, run_ttl, out)
return out
