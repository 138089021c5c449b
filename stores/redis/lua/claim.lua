-- claim.lua: claim up to N pending requests for one connection, in pending order.
-- Removing from the pending set and writing the running record happen here together,
-- so a claim is single-winner and never half-done.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  max to claim   ARGV[7] connection id   ARGV[8] node id
-- Applies lazy expiry to due leases first (up to 100), so a lapsed lease is redelivered.
-- Returns a list of claimed records (each a HGETALL list), possibly empty.
--!include common.lua
--!include record.lua
local max = tonumber(ARGV[6])
local claimed = {}
-- Expired leases first: a request whose lease lapsed is requeued at the front now,
-- rather than waiting for the sweeper.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', NOW, 'LIMIT', 0, 100)) do
  settle(id)
end
while #claimed < max do
  local ids = redis.call('ZRANGE', K_PENDING, 0, max - #claimed - 1)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local status = settle(id)
    if status == 'pending' then
      local key = REC .. id
      local lease_ms = tonumber(redis.call('HGET', key, 'lease_ms'))
      local epoch = redis.call('HINCRBY', key, 'epoch', 1)
      redis.call('HINCRBY', key, 'attempt', 1)
      redis.call('HSET', key, 'status', 'running', 'claimed_at', NOW,
        'lease_expires_at', NOW + lease_ms, 'connection_id', ARGV[7], 'node_id', ARGV[8])
      redis.call('HDEL', key, 'pending_deadline')
      redis.call('ZREM', K_PENDING, id)
      redis.call('ZREM', K_DEADLINES, id)
      redis.call('ZADD', K_LEASES, NOW + lease_ms, id)
      claimed[#claimed + 1] = publish_record(id, 'running', epoch)
    elseif status == nil then
      -- An index entry without a record: drop it so it cannot block the queue.
      forget(id)
    else
      -- Not pending (it just timed out, or the index was wrong): never loop on it.
      redis.call('ZREM', K_PENDING, id)
      redis.call('ZREM', K_DEADLINES, id)
    end
  end
end
return claimed
