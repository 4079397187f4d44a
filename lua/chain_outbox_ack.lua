-- chain_outbox_ack (schema 1): forget outbox entries a relay has published.
-- KEYS[1] outbox leases (zset)   ARGV entries
-- Returns {0, 'OK', removed}. Acknowledging an entry twice, or one whose lease moved to another
-- relay, removes it once (the other relay's publication is then a harmless duplicate).
if #ARGV == 0 then return {0, 'OK', 0} end
return {0, 'OK', redis.call('ZREM', KEYS[1], unpack(ARGV))}
