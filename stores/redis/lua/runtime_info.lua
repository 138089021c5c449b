-- runtime_info.lua: a runtime's presence and queue counts, read in one slot.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- Returns {now, pending count, running count, conns HGETALL, retained terminal count}.
--!include common.lua
return { NOW, redis.call('ZCARD', K_PENDING), redis.call('ZCARD', K_LEASES),
  redis.call('HGETALL', K_CONNS), redis.call('ZCARD', K_DONE) }
