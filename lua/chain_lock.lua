-- chain_lock (schema 1): take or renew a named lock of the deployment (e.g. the sweep's).
-- KEYS[1] lock   ARGV[1] owner   ARGV[2] ttl ms
-- Returns {code, msg}: 0 ACQUIRED (taken, or renewed by its owner), 1 HELD (another owner has it).
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0, 'ACQUIRED'} end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {0, 'ACQUIRED'}
end
return {1, 'HELD'}
