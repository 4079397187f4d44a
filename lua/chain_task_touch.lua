-- chain_task_touch (schema 1): record that a task is active, for the sweeps.
-- KEYS[1] active-task index (zset: task id -> last activity ms; one key for the deployment)
-- ARGV[1] now override (test only)   ARGV[2] task id
-- Returns {0, 'OK'}. Clean-up: chain_tasks_active drops tasks idle longer than its window.
--@include _now
redis.call('ZADD', KEYS[1], now_ms(ARGV[1]), ARGV[2])
return {0, 'OK'}
