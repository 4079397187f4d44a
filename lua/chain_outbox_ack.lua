--[[
  chain_outbox_ack (schema 3): forget outbox entries a relay has published; an item entry
  removed here is no longer waited for by its run, which may finish with it.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/outbox-ack.ts

  KEYS
    1 leases_key   outbox leases (zset)
    2..            run_keys: the records of the runs whose items are acknowledged (hash)
  ARGV
    1 now_arg      now in ms, TEST ONLY ('' in production: the server's TIME)
    2 run_ttl      ttl ms of a run's record once it has finished
    3 n            number of entries
    4..3+n         entries: the published entries
    4+n..3+2n      run_index: for each entry, the KEYS position - 1 of its run (0: none); absent
                   when no run key is given
  Returns {0, 'OK', removed[, 'run_finished:<i>'...]}: how many entries were still leased, and
  which runs (1-based among run_keys) this call finished. Acknowledging an entry twice, or one
  whose lease moved to another relay, removes it once (the other relay's publication is then a
  harmless duplicate) and counts it once. Any number of entries: ZREM goes one entry at a time
  when runs are counted, else in chunks (Lua's unpack takes ~8,000 values at most), so nothing
  after the first write can fail.
]]
local leases_key = KEYS[1]
local now_arg, run_ttl, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local FIRST_ENTRY, CHUNK = 4, 1000
--@include _now
--@include _run
--@include _run_items

local runs = run_read_from(2)
local now = #KEYS > 1 and now_ms(now_arg) or 0

-- write
local removed = 0
if #KEYS == 1 then
  for from = FIRST_ENTRY, FIRST_ENTRY + n - 1, CHUNK do
    removed = removed + redis.call('ZREM', leases_key, unpack(ARGV, from, math.min(from + CHUNK - 1, FIRST_ENTRY + n - 1)))
  end
  return {0, 'OK', removed}
end
local delivered = {}
for i = 0, n - 1 do
  local gone = redis.call('ZREM', leases_key, ARGV[FIRST_ENTRY + i])
  removed = removed + gone
  local j = tonumber(ARGV[FIRST_ENTRY + n + i])
  if gone == 1 and j > 0 then delivered[j] = (delivered[j] or 0) + 1 end
end
local out = {0, 'OK', removed}
run_items_delivered(runs, delivered, now, run_ttl, out)
return out
