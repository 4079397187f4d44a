-- etm_retry_promote (schema 1): move due retries of a task into its outbox, each exactly once.
-- KEYS[1] task retry zset (member: message, score: due ms)   KEYS[2] task outbox (list)
-- ARGV[1] now override (test only)   ARGV[2] most members   ARGV[3] ttl ms
-- Returns {0, 'OK', member...}: the promoted messages. However many processes poll, a due retry
-- is promoted by one of them only; from the outbox it is published like a successor (leased,
-- acknowledged), so a promoter that dies after this script loses nothing.
-- The first write is RPUSH (memory-checked): on OOM nothing is removed from the retry set.
--@include _now
local now = now_ms(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {0, 'OK'}
if #due == 0 then return out end
redis.call('RPUSH', KEYS[2], unpack(due))
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZREM', KEYS[1], unpack(due))
for i = 1, #due do out[#out + 1] = due[i] end
return out
