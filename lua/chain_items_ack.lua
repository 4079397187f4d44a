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
  (an entry acknowledged twice, by two consumers after a take-over, counts once in its run),
  and which runs (1-based among run_keys) this call finished. The entries are deleted from the
  stream. Reads first (the stream's type with XLEN, the runs), then writes.
]]
local items_key = KEYS[1]
local group, now_arg, run_ttl, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local FIRST_ID, CHUNK = 5, 1000
--@include _now
--@include _run

redis.call('XLEN', items_key)
local runs = {}
for j = 2, #KEYS do runs[j - 1] = run_read(KEYS[j], nil) end
local now = #KEYS > 1 and now_ms(now_arg) or 0

-- write
local acknowledged = 0
local delivered = {}
for i = 0, n - 1 do
  local gone = redis.call('XACK', items_key, group, ARGV[FIRST_ID + i])
  acknowledged = acknowledged + gone
  local j = tonumber(ARGV[FIRST_ID + n + i])
  if gone == 1 and j > 0 then delivered[j] = (delivered[j] or 0) + 1 end
end
for from = FIRST_ID, FIRST_ID + n - 1, CHUNK do
  redis.call('XDEL', items_key, unpack(ARGV, from, math.min(from + CHUNK - 1, FIRST_ID + n - 1)))
end
local out = {0, 'OK', acknowledged}
for j = 1, #KEYS - 1 do
  if runs[j] and delivered[j] and run_write(runs[j], now, run_ttl, {'ob', -delivered[j]}) then
    out[#out + 1] = RUN_FINISHED .. j
  end
end
return out
