-- chain_outbox_take (schema 1): take entries from a task's outbox in commit order.
-- KEYS[1] outbox (list)   ARGV[1] most entries
-- Returns {0, 'OK', entry...}.
local taken = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))
local out = {0, 'OK'}
if taken then for i = 1, #taken do out[#out + 1] = taken[i] end end
return out
