-- expire.lua: the sweeper's transition for one runtime. Times out pending requests past
-- their deadline, requeues or times out expired leases, purges terminal records past
-- retention, and drops connections whose node stopped refreshing them.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  max records per category in one call
-- Returns {timed_out_ids, requeued_ids, purged, stale_connections, live, retained}.
--!include common.lua
--!include record.lua
local limit = tonumber(ARGV[6])
local timed_out, requeued = {}, {}
local function settle_due(zset)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', zset, '-inf', NOW, 'LIMIT', 0, limit)) do
    local _, change = settle(id)
    if change == 'timeout' then
      timed_out[#timed_out + 1] = id
    elseif change == 'requeue' then
      requeued[#requeued + 1] = id
    elseif change == nil and redis.call('EXISTS', REC .. id) == 0 then
      forget(id)
    end
  end
end
settle_due(K_DEADLINES)
settle_due(K_LEASES)
local purged = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_DONE, '-inf', NOW - RETENTION,
    'LIMIT', 0, limit)) do
  forget(id)
  purged = purged + 1
end
local stale = 0
local conns = redis.call('HGETALL', K_CONNS)
for i = 1, #conns, 2 do
  local field = conns[i]
  if field ~= '~seen' then
    local ok, info = pcall(cjson.decode, conns[i + 1])
    if not ok or tonumber(info.expires_at) <= NOW then
      redis.call('HDEL', K_CONNS, field)
      if field ~= '~http' then stale = stale + 1 end
    end
  end
end
local live = redis.call('ZCARD', K_PENDING) + redis.call('ZCARD', K_LEASES)
return { timed_out, requeued, purged, stale, live, redis.call('ZCARD', K_DONE) }
