-- touch_runtime.lua: mark a runtime as touched in its sweep bucket (before a create), on
-- Redis's clock: the same clock forget_runtime.lua compares with, whatever the nodes' own.
-- KEYS[1]  sweep bucket ZSET (runtime tag -> last touched ms)
-- ARGV[1]  runtime tag   ARGV[2] now in ms, or '' for Redis TIME
-- Returns 1.
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
return 1
