-- forget_runtime.lua: drop a runtime from its sweep bucket, unless it was touched within
-- the grace period (a create may be under way for it: creates touch the bucket first).
-- Both the touch and this comparison use Redis's clock.
-- KEYS[1]  sweep bucket ZSET (runtime tag -> last touched ms)
-- ARGV[1]  runtime tag   ARGV[2] grace ms   ARGV[3] now in ms, or '' for Redis TIME
-- Returns 1 when removed, else 0.
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local touched = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if touched and touched < now - tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
