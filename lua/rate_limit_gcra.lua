-- rate_limit_gcra (version 1)
-- One rate-limit decision over up to two GCRA buckets (global and per-key), consumed together
-- or not at all. Mirrors src/rate-limit/local-store.ts; the parity property test holds them
-- together. Every value is an integer number of microseconds (exact in Lua's doubles: all
-- values stay below 2^53).
--
-- Bucket state: one string key per bucket holding its theoretical arrival time (TAT, integer
-- microseconds of the server clock). A missing key, or a TAT at or before now, is a full bucket.
--
-- KEYS (one per enabled bucket, in this order; all in one hash slot):
--   KEYS[1]  the global bucket           (when ARGV[3] > 0)
--   KEYS[n]  the per-key bucket          (when ARGV[5] > 0; n = 2 if the global is enabled, else 1)
-- ARGV:
--   ARGV[1]  now in ms, TEST ONLY: when non-empty it replaces redis.call('TIME'), so that the
--            parity test can replay one clock against both stores (written keys then live 10
--            minutes longer, which changes no decision). Production callers pass ''.
--   ARGV[2]  cost: tokens to take (integer >= 0)
--   ARGV[3]  global emission interval, µs per token (integer >= 1), or 0 when no global bucket
--   ARGV[4]  global tolerance, µs (burst * emission)
--   ARGV[5]  per-key emission interval, µs per token, or 0 when no per-key bucket
--   ARGV[6]  per-key tolerance, µs
--   ARGV[7]  global key TTL, ms: the tolerance rounded up (integer >= 1; '0' when no global)
--   ARGV[8]  per-key key TTL, ms: the tolerance rounded up (integer >= 1; '0' when no per-key)
-- Returns {code, msg, retryAfterUs, remaining}:
--   0 ALLOWED     both buckets had room; their TATs were advanced (retryAfterUs = 0)
--   1 THROTTLED   at least one bucket lacked room; nothing was written; retryAfterUs is the
--                 wait after which both buckets will have room
--   2 BAD_ARGS    an argument is missing or malformed; nothing was written
-- remaining: tokens left in the tighter bucket (after this call when ALLOWED).
-- Writes: SET ... PX <TTL> on every written key. A TAT is never more than the tolerance ahead
-- of now, so a key outlives its TAT and expires at most one full refill after it is full again.

--@include _gcra
local cost = tonumber(ARGV[2])
local g_em, g_tol = tonumber(ARGV[3]), tonumber(ARGV[4])
local k_em, k_tol = tonumber(ARGV[5]), tonumber(ARGV[6])
local g_ttl, k_ttl = ARGV[7], ARGV[8]
if cost == nil or g_em == nil or g_tol == nil or k_em == nil or k_tol == nil
  or cost < 0 or g_em < 0 or g_tol < 0 or k_em < 0 or k_tol < 0
  or cost % 1 ~= 0 or g_em % 1 ~= 0 or g_tol % 1 ~= 0 or k_em % 1 ~= 0 or k_tol % 1 ~= 0
  or (g_em > 0 and not (tonumber(g_ttl) and tonumber(g_ttl) >= 1))
  or (k_em > 0 and not (tonumber(k_ttl) and tonumber(k_ttl) >= 1))
  or #KEYS ~= (g_em > 0 and 1 or 0) + (k_em > 0 and 1 or 0) then
  return {2, 'BAD_ARGS', 0, 0}
end

local now
local test_clock = ARGV[1] ~= nil and ARGV[1] ~= ''
if test_clock then
  local ms = tonumber(ARGV[1])
  if ms == nil or ms % 1 ~= 0 then return {2, 'BAD_ARGS', 0, 0} end
  now = ms * 1000
  -- keys must outlive the real time a test takes; a key whose TAT has passed is the same as a
  -- missing one, so a longer life never changes a decision
  g_ttl = tonumber(g_ttl) + 600000
  k_ttl = tonumber(k_ttl) + 600000
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- read and check everything first
local g_key, k_key, g_tat, k_tat
if g_em > 0 and k_em > 0 then
  g_key, k_key = KEYS[1], KEYS[2]
  local v = redis.call('MGET', g_key, k_key)
  g_tat, k_tat = tonumber(v[1]), tonumber(v[2])
elseif g_em > 0 then
  g_key = KEYS[1]
  g_tat = tonumber(redis.call('GET', g_key))
else
  k_key = KEYS[1]
  k_tat = tonumber(redis.call('GET', k_key))
end
local allowed, retry, avail, g_new, k_new = gcra_decide(now, cost, g_em, g_tol, g_tat, k_em, k_tol, k_tat)

if not allowed then
  return {1, 'THROTTLED', retry, avail}
end

-- then write. The TATs go to Redis as '%d' text (exact for integers below 2^53, unlike tostring),
-- and the TTLs as the ARGV text: a Lua number argument would be formatted with printf's %.17g.
if cost > 0 then
  if g_key then redis.call('SET', g_key, string.format('%d', g_new), 'PX', g_ttl) end
  if k_key then redis.call('SET', k_key, string.format('%d', k_new), 'PX', k_ttl) end
end
return {0, 'ALLOWED', 0, avail - cost}
