-- now_ms(arg): the server clock in ms, or `arg` when it is non-empty (a TEST-ONLY override that
-- lets the parity tests drive both implementations with one clock; production passes '').
local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
