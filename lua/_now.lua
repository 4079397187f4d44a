-- now_ms(arg): the server clock in ms, or `arg` when it is non-empty (a TEST-ONLY override that
-- lets the parity tests drive both implementations with one clock; production passes ''). The
-- texts convert by arithmetic (one conversion each, where tonumber makes two), and the ms are
-- floor(us / 1000) without a math.floor call (us is a non-negative integer).
local function now_ms(arg)
  if arg ~= nil and arg ~= '' then return arg + 0 end
  local t = redis.call('TIME')
  local us = t[2] + 0
  return t[1] * 1000 + (us - us % 1000) / 1000
end
