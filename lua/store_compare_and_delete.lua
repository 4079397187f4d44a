-- store_compare_and_delete (version 1)
-- Deletes a key only while it still holds the expected value: the safe release of a lock or
-- lease taken with setNX (a plain GET then DEL could delete a successor's lock).
--
-- KEYS[1]  the key
-- ARGV[1]  the expected value
-- Returns {code, msg}:
--   0 DELETED    the key held the value and was deleted
--   1 MISMATCH   the key holds another value; nothing was written
--   2 MISSING    the key does not exist
local current = redis.call('GET', KEYS[1])
if current == false then
  return {2, 'MISSING'}
end
if current ~= ARGV[1] then
  return {1, 'MISMATCH'}
end
redis.call('DEL', KEYS[1])
return {0, 'DELETED'}
