-- forget_runtime.lua: drop a runtime from its sweep bucket, unless it was touched after
-- the cutoff (a create may be under way for it: creates touch the bucket first).
-- KEYS[1]  sweep bucket ZSET (runtime tag -> last touched ms)
-- ARGV[1]  runtime tag   ARGV[2] cutoff ms
-- Returns 1 when removed, else 0.
local touched = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if touched and touched < tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
