-- gcra_decide(now, cost, g_em, g_tol, g_tat, k_em, k_tol, k_tat): one GCRA decision over up to two
-- buckets (an emission of 0 means "no such bucket"), consumed together or not at all. Shared by
-- rate_limit_gcra and rate_limit_gcra_batch; mirrors src/rate-limit/local-store.ts. Returns
-- allowed, retryAfterUs (0 when allowed), remaining (tokens left in the tighter bucket before this
-- call), and the new TATs of both buckets (to write when allowed). Integer µs throughout.
local function gcra_decide(now, cost, g_em, g_tol, g_tat, k_em, k_tol, k_tat)
  local allowed, retry, avail = true, 0, -1
  local g_new, k_new
  if g_em > 0 then
    local base = now
    if g_tat and g_tat > now then base = g_tat end
    local a = math.floor((g_tol - (base - now)) / g_em)
    if a < 0 then a = 0 end
    avail = a
    g_new = base + cost * g_em
    if cost > a then
      allowed = false
      retry = g_new - g_tol - now
    end
  end
  if k_em > 0 then
    local base = now
    if k_tat and k_tat > now then base = k_tat end
    local a = math.floor((k_tol - (base - now)) / k_em)
    if a < 0 then a = 0 end
    if avail < 0 or a < avail then avail = a end
    k_new = base + cost * k_em
    if cost > a then
      allowed = false
      local r = k_new - k_tol - now
      if r > retry then retry = r end
    end
  end
  return allowed, retry, avail, g_new, k_new
end
