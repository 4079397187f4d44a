--[[
  ptm_fallback_gate (schema 2): try_allow_fallback_once per (step, prefix request) of a node.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/fallback-gate.ts

  KEYS
    1 gate_key   fallback gate of the node
  ARGV
    1 ttl        ttl ms of the gate
  Returns {code, msg}
    0 ALLOWED   the first fallback of this node
    1 REFUSED   a fallback already happened (no loop); nothing written
]]
local gate_key = KEYS[1]
local ttl = ARGV[1]

if redis.call('SET', gate_key, '1', 'NX', 'PX', ttl) then return {0, 'ALLOWED'} end
return {1, 'REFUSED'}
