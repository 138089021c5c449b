-- claiming.lua: claim up to max pending requests for one connection, in pending order.
-- Requires common.lua and record.lua. Removing from the pending set and writing the
-- running record happen together, so a claim is single-winner and never half-done.
-- Applies lazy expiry to due leases first (up to 100), so a lapsed lease is redelivered
-- now rather than at the next sweep. Returns the claimed records (HGETALL lists).
local function claim_for(max, connection_id, node_id)
  local claimed = {}
  if max <= 0 then return claimed end
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
          'lease_expires_at', NOW + lease_ms, 'connection_id', connection_id,
          'node_id', node_id)
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
end
