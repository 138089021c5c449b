-- expire.lua: the sweeper's transition for one runtime. Times out pending requests past
-- their deadline, requeues or times out expired leases, purges terminal records past
-- retention, and drops connections whose node stopped refreshing them.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  max records per category in one call (keeps one call short: Redis runs
--          nothing else meanwhile)
-- Returns {timed_out_ids, requeued_ids, purged, stale_connections, live, retained, more,
-- pending, connections, oldest, claimable}: `more` is 1 when a category filled its batch, so more
-- may be due (the caller calls again), else 0; `pending` how many are pending (held
-- ones of ordering keys included), `connections` the daemon connections still present,
-- `oldest` when the oldest claimable pending request was created (0: none), and
-- `claimable` how many pending are not held, after the call.
--!include common.lua
--!include record.lua
local limit = tonumber(ARGV[6])
local timed_out, requeued = {}, {}
local more = 0
local function settle_due(zset)
  local due = redis.call('ZRANGEBYSCORE', zset, '-inf', NOW, 'LIMIT', 0, limit)
  if #due == limit then more = 1 end
  for _, id in ipairs(due) do
    local _, change = settle(id)
    if change == 'timeout' then
      timed_out[#timed_out + 1] = id
    elseif change == 'requeue' then
      requeued[#requeued + 1] = id
    elseif change == nil then
      -- Due by the index but not by the record: a stale entry. Drop it, so the caller's
      -- loop (repeat while a batch is full) cannot meet the same entries again.
      if redis.call('EXISTS', REC .. id) == 0 then forget(id) else redis.call('ZREM', zset, id) end
    end
  end
end
settle_due(K_DEADLINES)
settle_due(K_LEASES)
local lapsed = redis.call('ZRANGEBYSCORE', K_DONE, '-inf', NOW - RETENTION, 'LIMIT', 0, limit)
if #lapsed == limit then more = 1 end
for _, id in ipairs(lapsed) do forget(id) end
local purged = #lapsed
local stale, present = 0, 0
local conns = redis.call('HGETALL', K_CONNS)
for i = 1, #conns, 2 do
  local field = conns[i]
  if field ~= '~seen' then
    local ok, info = pcall(cjson.decode, conns[i + 1])
    if not ok or tonumber(info.expires_at) <= NOW then
      redis.call('HDEL', K_CONNS, field)
      if field ~= '~http' then stale = stale + 1 end
    elseif field ~= '~http' then
      present = present + 1
    end
  end
end
-- Pending includes the held requests of ordering keys (in the deadlines, not the queue).
local pending = redis.call('ZCARD', K_DEADLINES)
local live = pending + redis.call('ZCARD', K_LEASES)
-- The oldest pending request, for the backlog age. A priority's band holds requeued
-- requests (offset 0, by id: a ULID, so by creation) before created ones (offset
-- created_at + 1, by time): the oldest of a band is its first requeued or its first
-- created one. Bands are visited from the head to the tail's band, usually one.
local oldest = 0
if redis.call('EXISTS', K_PENDING) == 1 then
  local tail = redis.call('ZRANGE', K_PENDING, -1, -1, 'WITHSCORES')
  local last_band = math.floor(tonumber(tail[2]) / BAND)
  local from = '-inf'
  while true do
    local head = redis.call('ZRANGEBYSCORE', K_PENDING, from, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #head == 0 then break end
    local band = math.floor(tonumber(head[2]) / BAND)
    local base = band * BAND
    local created = {}
    if tonumber(head[2]) == base then
      created[1] = tonumber(redis.call('HGET', REC .. head[1], 'created_at'))
      local first = redis.call('ZRANGEBYSCORE', K_PENDING, string.format('(%d', base),
        string.format('(%d', base + BAND), 'WITHSCORES', 'LIMIT', 0, 1)
      if #first > 0 then created[2] = tonumber(first[2]) - base - 1 end
    else
      created[1] = tonumber(head[2]) - base - 1
    end
    for _, t in ipairs(created) do
      if t and (oldest == 0 or t < oldest) then oldest = t end
    end
    if band >= last_band then break end
    from = string.format('%d', base + BAND)
  end
end
return { timed_out, requeued, purged, stale, live, redis.call('ZCARD', K_DONE), more,
  pending, present, oldest, redis.call('ZCARD', K_PENDING) }
