--[[
  chain_task_touch (schema 2): record that a task is active, for the sweeps.
  TypeScript side (keys, arguments, reply, local twin): src/chain/state/transitions/task-touch.ts

  KEYS
    1 active_key   active-task index (zset: task id -> last activity ms; one key for the deployment)
  ARGV
    1 now_arg      now in ms, TEST ONLY ('' in production: the server's TIME)
    2 task_id      the task (the member, unescaped)
  Returns {0, 'OK'}. No TTL: chain_tasks_active drops tasks idle longer than its window.
]]
local active_key = KEYS[1]
local now_arg, task_id = ARGV[1], ARGV[2]
--@include _now

redis.call('ZADD', active_key, now_ms(now_arg), task_id)
return {0, 'OK'}
