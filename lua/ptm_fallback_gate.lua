--[[
  ptm_fallback_gate (schema 3): try_allow_fallback_once per (step, prefix request) of a node; the
  gate is named in its run's key index, for the run's clean-up.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/fallback-gate.ts

  KEYS
    1 gate_key       fallback gate of the node
    2 run_keys_key   the keys the node's run wrote (zset of key suffixes)
  ARGV
    1 ttl            ttl ms of the gate (and of the run's key index)
  Returns {code, msg}
    0 ALLOWED   the first fallback of this node
    1 REFUSED   a fallback already happened (no loop); nothing written
  Errors: WRONGTYPE when the index holds another type (its ZADD is the first write: nothing is
  written).
]]
local gate_key, run_keys_key = KEYS[1], KEYS[2]
local ttl = ARGV[1]

if redis.call('EXISTS', gate_key) == 1 then return {1, 'REFUSED'} end
local suffix = string.match(gate_key, '}:([^}]*)$')
if suffix then
  redis.call('ZADD', run_keys_key, 0, suffix)
  redis.call('PEXPIRE', run_keys_key, ttl)
end
redis.call('SET', gate_key, '1', 'PX', ttl)
return {0, 'ALLOWED'}
