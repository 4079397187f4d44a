--[[
  ptm_renew_lease (schema 2): extend the lease of a node its owner is still running (fenced).
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/renew-lease.ts

  KEYS
    1 node_key     node state (hash: status, owner, version, lease_until, schema)
  ARGV
    1 now_arg      now in ms, TEST ONLY ('' in production: the server's TIME)
    2 owner        who renews
    3 version      the fencing version its claim got
    4 lease_ms     the new lease runs this long from now
    5 schema       CHAIN_SCHEMA_VERSION
  Returns {code, msg, lease_until}
    0 RENEWED   the lease now ends at lease_until
    1 FENCED    the node is no longer this owner's claim (done, failed, recovered, claimed by
                another owner or with another version); nothing written
  Errors: SCHEMA_MISMATCH when another schema wrote the node; WRONGTYPE when a key holds another
  type. Writes only on RENEWED, after every check.
]]
local node_key = KEYS[1]
local now_arg, owner, version, lease_ms = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local schema_text = ARGV[5]
--@include _now
local now = now_ms(now_arg)

local f = redis.call('HMGET', node_key, 'status', 'owner', 'version', 'schema')
if f[1] == false then return {1, 'FENCED', 0} end
if tonumber(f[4]) ~= tonumber(schema_text) then
  return redis.error_reply('SCHEMA_MISMATCH node state has schema ' .. tostring(f[4]) .. ', this version reads ' .. schema_text)
end
if f[1] ~= 'processing' or f[2] ~= owner or f[3] ~= version then return {1, 'FENCED', 0} end
local until_text = string.format('%d', now + lease_ms)
redis.call('HSET', node_key, 'lease_until', until_text)
return {0, 'RENEWED', now + lease_ms}
