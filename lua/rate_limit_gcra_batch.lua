-- rate_limit_gcra_batch (version 1)
-- Several rate-limit decisions in one call, applied in order, each exactly as
-- rate_limit_gcra.lua would apply it alone (a later decision sees the writes of an earlier one).
-- The client batches decisions that are waiting at the same time, so a busy limiter pays one
-- round trip and one script call for many decisions. Every value is an integer number of µs.
--
-- KEYS: the bucket keys of every decision, in order (1 or 2 per decision, as in rate_limit_gcra).
--       On a Redis Cluster the client only batches decisions whose keys share one hash slot.
-- ARGV:
--   ARGV[1]  now in ms, TEST ONLY ('' in production: the server's TIME is used)
--   ARGV[2]  n, the number of decisions
--   then 8 values per decision: nkeys, cost, g_em, g_tol, k_em, k_tol, g_ttl, k_ttl
--            (nkeys = number of KEYS it uses; the rest as ARGV[2..8] of rate_limit_gcra)
-- Returns {0, 'OK', code1, retryAfterUs1, remaining1, code2, ...}; each code is
--   0 ALLOWED, 1 THROTTLED, 2 BAD_ARGS (that decision only: nothing written for it).
-- Writes: SET ... PX <TTL> on every written key, as rate_limit_gcra.

--@include _gcra
local n = tonumber(ARGV[2])
if n == nil or n < 0 or n % 1 ~= 0 or #ARGV ~= 2 + 8 * n then return {2, 'BAD_ARGS'} end

local now
local test_clock = ARGV[1] ~= nil and ARGV[1] ~= ''
if test_clock then
  local ms = tonumber(ARGV[1])
  if ms == nil or ms % 1 ~= 0 then return {2, 'BAD_ARGS'} end
  now = ms * 1000
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local out = {0, 'OK'}
local ki = 1
for d = 0, n - 1 do
  local a0 = 2 + d * 8
  local nkeys = tonumber(ARGV[a0 + 1])
  local cost = tonumber(ARGV[a0 + 2])
  local g_em, g_tol = tonumber(ARGV[a0 + 3]), tonumber(ARGV[a0 + 4])
  local k_em, k_tol = tonumber(ARGV[a0 + 5]), tonumber(ARGV[a0 + 6])
  -- the TTLs reach SET as the ARGV strings (Redis formats a Lua number argument with printf)
  local g_ttl_text, k_ttl_text = ARGV[a0 + 7], ARGV[a0 + 8]
  local g_ttl, k_ttl = tonumber(g_ttl_text), tonumber(k_ttl_text)
  local bad = nkeys == nil or cost == nil or g_em == nil or g_tol == nil or k_em == nil or k_tol == nil
    or g_ttl == nil or k_ttl == nil
    or cost < 0 or g_em < 0 or g_tol < 0 or k_em < 0 or k_tol < 0
    or cost % 1 ~= 0 or g_em % 1 ~= 0 or g_tol % 1 ~= 0 or k_em % 1 ~= 0 or k_tol % 1 ~= 0
    or (g_em > 0 and g_ttl < 1) or (k_em > 0 and k_ttl < 1)
    or nkeys ~= (g_em > 0 and 1 or 0) + (k_em > 0 and 1 or 0)
    or ki + nkeys - 1 > #KEYS
  if bad then
    out[#out + 1] = 2; out[#out + 1] = 0; out[#out + 1] = 0
    if nkeys ~= nil and nkeys >= 0 and nkeys <= 2 then ki = ki + nkeys end
  else
    if test_clock then
      g_ttl_text = string.format('%d', g_ttl + 600000); k_ttl_text = string.format('%d', k_ttl + 600000)
    end
    local g_key, k_key
    if g_em > 0 then g_key = KEYS[ki]; ki = ki + 1 end
    if k_em > 0 then k_key = KEYS[ki]; ki = ki + 1 end
    local g_tat, k_tat
    if g_key then g_tat = tonumber(redis.call('GET', g_key)) end
    if k_key then k_tat = tonumber(redis.call('GET', k_key)) end
    local allowed, retry, avail, g_new, k_new = gcra_decide(now, cost, g_em, g_tol, g_tat, k_em, k_tol, k_tat)
    if allowed then
      if cost > 0 then
        if g_key then redis.call('SET', g_key, string.format('%d', g_new), 'PX', g_ttl_text) end
        if k_key then redis.call('SET', k_key, string.format('%d', k_new), 'PX', k_ttl_text) end
      end
      out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = avail - cost
    else
      out[#out + 1] = 1; out[#out + 1] = retry; out[#out + 1] = avail
    end
  end
end
return out
