-- lock_bucket.lua: take a sweep bucket's lock, or extend it when this node holds it.
-- KEYS[1]  lock key   ARGV[1] node id   ARGV[2] ttl ms
-- Returns 1 when this node holds the lock afterwards, else 0.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
