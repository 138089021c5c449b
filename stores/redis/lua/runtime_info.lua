-- runtime_info.lua: a runtime's presence and queue counts, read in one slot.
-- Applies lazy expiry first (a read never sees a pending request past its deadline, nor
-- a lapsed lease as running): up to ARGV[6] due deadlines and as many due leases are
-- settled here, and any still due beyond that are left out of the counts (the sweeper
-- settles them; a lapsed lease left out may be requeued there and counted again).
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  max records per category to settle
-- Returns {now, pending count, running count, conns HGETALL, retained terminal count}.
--!include common.lua
--!include record.lua
local limit = tonumber(ARGV[6])
for _, zset in ipairs({ K_DEADLINES, K_LEASES }) do
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', zset, '-inf', NOW, 'LIMIT', 0, limit)) do
    settle(id)
  end
end
-- Pending counts the held requests of ordering keys too: every pending one has a deadline.
local pending = redis.call('ZCARD', K_DEADLINES) - redis.call('ZCOUNT', K_DEADLINES, '-inf', NOW)
local running = redis.call('ZCARD', K_LEASES) - redis.call('ZCOUNT', K_LEASES, '-inf', NOW)
return { NOW, math.max(pending, 0), math.max(running, 0),
  redis.call('HGETALL', K_CONNS), redis.call('ZCARD', K_DONE) }
