-- etm_terminate_mark (schema 1): mark a task or a module terminated, idempotently.
-- KEYS[1] terminate mark   ARGV[1] reason   ARGV[2] ttl ms
-- Returns {code, msg}: 0 TERMINATED (first mark), 1 ALREADY_TERMINATED.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0, 'TERMINATED'} end
return {1, 'ALREADY_TERMINATED'}
