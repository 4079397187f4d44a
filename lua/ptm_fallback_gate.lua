-- ptm_fallback_gate (schema 1): try_allow_fallback_once per (step, prefix request) of a node.
-- KEYS[1] fallback gate   ARGV[1] ttl ms
-- Returns {code, msg}: 0 ALLOWED (first time), 1 REFUSED (a fallback already happened: no loop).
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return {0, 'ALLOWED'} end
return {1, 'REFUSED'}
