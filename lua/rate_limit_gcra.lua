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
-- Returns {code, msg, retryAfterUs, remaining, nowUs}:
--   0 ALLOWED     both buckets had room; their TATs were advanced (retryAfterUs = 0)
--   1 THROTTLED   at least one bucket lacked room; nothing was written; retryAfterUs is the
--                 wait after which both buckets will have room
--   2 BAD_ARGS    an argument is missing or malformed; nothing was written
-- remaining: tokens still available in the fuller-constrained bucket (after this call when
-- ALLOWED). Writes: SET with PX so every written key expires when its bucket is full again.

local function int_arg(i)
  local v = tonumber(ARGV[i])
  if v == nil or v < 0 or v ~= math.floor(v) then return nil end
  return v
end

local cost = int_arg(2)
local g_em, g_tol = int_arg(3), int_arg(4)
local k_em, k_tol = int_arg(5), int_arg(6)
if cost == nil or g_em == nil or g_tol == nil or k_em == nil or k_tol == nil then
  return {2, 'BAD_ARGS', 0, 0, 0}
end
local want_keys = (g_em > 0 and 1 or 0) + (k_em > 0 and 1 or 0)
if #KEYS ~= want_keys then return {2, 'BAD_ARGS', 0, 0, 0} end

local now
local test_clock = ARGV[1] ~= nil and ARGV[1] ~= ''
if test_clock then
  local ms = tonumber(ARGV[1])
  if ms == nil or ms ~= math.floor(ms) then return {2, 'BAD_ARGS', 0, 0, 0} end
  now = ms * 1000
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- read and check everything first
local allowed = true
local retry = 0
local avail = -1  -- -1 means no bucket seen yet
local buckets = {}

local function check(key, em, tol)
  local tat = tonumber(redis.call('GET', key))
  local base = now
  if tat ~= nil and tat > now then base = tat end
  local a = math.floor((tol - (base - now)) / em)
  if a < 0 then a = 0 end
  if avail < 0 or a < avail then avail = a end
  local new_tat = base + cost * em
  if cost > a then
    allowed = false
    local r = new_tat - tol - now
    if r > retry then retry = r end
  end
  buckets[#buckets + 1] = {key, new_tat}
end

local n = 1
if g_em > 0 then check(KEYS[n], g_em, g_tol); n = n + 1 end
if k_em > 0 then check(KEYS[n], k_em, k_tol) end

if not allowed then
  return {1, 'THROTTLED', retry, avail, now}
end

-- then write
if cost > 0 then
  for _, b in ipairs(buckets) do
    local ttl_ms = math.ceil((b[2] - now) / 1000)
    if ttl_ms < 1 then ttl_ms = 1 end
    -- under the test clock, keys must outlive the real time a test takes; a key whose TAT has
    -- passed is the same as a missing one, so a longer life never changes a decision
    if test_clock then ttl_ms = ttl_ms + 600000 end
    redis.call('SET', b[1], string.format('%d', b[2]), 'PX', string.format('%d', ttl_ms))
  end
end
return {0, 'ALLOWED', 0, avail - cost, now}
