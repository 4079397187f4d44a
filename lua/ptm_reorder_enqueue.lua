-- ptm_reorder_enqueue (schema 1): park a message whose node does not exist yet.
-- KEYS[1] reorder buffer of the run's module (hash: ptm id -> message)
-- ARGV[1] ptm id   ARGV[2] message   ARGV[3] ttl ms
-- Returns {code, msg}: 0 ENQUEUED, 1 DUPLICATE_BUFFERED. The parent's success commit drains it.
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return {1, 'DUPLICATE_BUFFERED'} end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {0, 'ENQUEUED'}
