-- record.lua: the shared steps of the state machine. Requires common.lua.

-- Pending score: priority 9 sorts first; within a priority, offset 0 (requeued, then by
-- id) comes before created requests (offset created_at + 1). 2^45 ms is ~1100 years.
local BAND = 35184372088832
local function pending_score(priority, offset)
  return (9 - tonumber(priority)) * BAND + offset
end

-- An update hint carries the record as it now is (its HGETALL list) when the caller
-- has it and its values total at most HINT_RECORD_BYTES: a node that forwards it to a
-- client or answers a long-poll with it need not read the record again.
local HINT_RECORD_BYTES = 8192
-- Written in this key order, record last (stores/hints.ts reads the head alone when it
-- does not need the record).
local function publish_update(id, status, epoch, flat)
  local head = '{"id":' .. cjson.encode(id) .. ',"status":' .. cjson.encode(status) ..
    ',"epoch":' .. tonumber(epoch)
  if flat then
    local size = 0
    for i = 2, #flat, 2 do size = size + #flat[i] end
    if size <= HINT_RECORD_BYTES then
      redis.call('PUBLISH', CH_UPDATES, head .. ',"record":' .. cjson.encode(flat) .. '}')
      return
    end
  end
  redis.call('PUBLISH', CH_UPDATES, head .. '}')
end

-- The record of id as it now is, published with its hint and returned.
local function publish_record(id, status, epoch)
  local flat = redis.call('HGETALL', REC .. id)
  publish_update(id, status, epoch, flat)
  return flat
end

-- Ordering keys. A key's line holds its live requests in creation order. Only the
-- head is ever in K_PENDING (or running); the ones behind it are pending but held: in
-- K_DEADLINES (they may time out) and not claimable. A requeued head stays the head.

-- Put id at the back of its key's line. Returns true when it is the head (line empty).
local function line_join(id, key)
  local line = LINE .. key
  local tail = redis.call('ZRANGE', line, -1, -1, 'WITHSCORES')
  local pos = 1
  if #tail > 0 then pos = tonumber(tail[2]) + 1 end
  redis.call('ZADD', line, pos, id)
  return pos == 1
end

-- The line's head left it (terminal): the next live one becomes claimable now, in its
-- priority band as a created entry, and the wake-up is published. Entries without a
-- pending record are stale: dropped on the way.
local function line_promote(line)
  while true do
    local head = redis.call('ZRANGE', line, 0, 0)
    if #head == 0 then return end
    local r = redis.call('HMGET', REC .. head[1], 'status', 'priority', 'created_at')
    if r[1] == 'pending' then
      redis.call('ZADD', K_PENDING, pending_score(r[2], tonumber(r[3]) + 1), head[1])
      redis.call('PUBLISH', CH_WAKE, '1')
      return
    elseif r[1] == 'running' then
      return
    end
    redis.call('ZREM', line, head[1])
  end
end

-- id (of key's line) is terminal: it leaves the line; when it was the head, the next
-- one is promoted. A line left empty is gone (Redis deletes an empty ZSET).
local function line_leave(id, key)
  local line = LINE .. key
  local head = redis.call('ZRANGE', line, 0, 0)
  if redis.call('ZREM', line, id) == 1 and head[1] == id then line_promote(line) end
end

-- Insert a new pending record. f: {id, kind, payload, priority, max_attempts,
-- pending_timeout_ms, lease_ms, created_by, retry_of, ordering_key ('' for none),
-- traceparent?, tracestate? ('' or nil: the field is not written)}. With a key it joins
-- the key's line, and is claimable only as its head. Returns its fields (as HGETALL
-- would, without reading them back).
local function insert(f)
  local key = REC .. f.id
  local deadline = NOW + tonumber(f.pending_timeout_ms)
  local flat = {
    'id', f.id, 'workspace', f.workspace, 'runtime', f.runtime, 'kind', f.kind,
    'payload', f.payload, 'status', 'pending', 'priority', f.priority,
    'attempt', '0', 'max_attempts', f.max_attempts, 'epoch', '0', 'created_at', tostring(NOW),
    'pending_deadline', tostring(deadline), 'lease_ms', f.lease_ms,
    'pending_timeout_ms', f.pending_timeout_ms, 'created_by', f.created_by }
  if f.retry_of ~= '' then
    flat[#flat + 1] = 'retry_of'
    flat[#flat + 1] = f.retry_of
  end
  local claimable = true
  if f.ordering_key ~= '' then
    flat[#flat + 1] = 'ordering_key'
    flat[#flat + 1] = f.ordering_key
    claimable = line_join(f.id, f.ordering_key)
  end
  if f.traceparent and f.traceparent ~= '' then
    flat[#flat + 1] = 'traceparent'
    flat[#flat + 1] = f.traceparent
    if f.tracestate ~= '' then
      flat[#flat + 1] = 'tracestate'
      flat[#flat + 1] = f.tracestate
    end
  end
  redis.call('HSET', key, unpack(flat))
  if claimable then redis.call('ZADD', K_PENDING, pending_score(f.priority, NOW + 1), f.id) end
  redis.call('ZADD', K_DEADLINES, deadline, f.id)
  redis.call('ZADD', K_IDS, 0, f.id)
  publish_update(f.id, 'pending', 0, flat)
  return flat
end

-- Move a pending or running record to a terminal status. extra: field/value list.
-- with_record: read the record back, publish it with the hint and return it. A keyed
-- record leaves its line (promoting the next one when it was the head).
local function finish(id, status, epoch, extra, with_record)
  local key = REC .. id
  local ordering_key = redis.call('HGET', key, 'ordering_key')
  if ordering_key then line_leave(id, ordering_key) end
  redis.call('HSET', key, 'status', status, 'finished_at', NOW, unpack(extra))
  redis.call('HDEL', key, 'lease_expires_at', 'connection_id', 'node_id')
  redis.call('ZREM', K_PENDING, id)
  redis.call('ZREM', K_DEADLINES, id)
  redis.call('ZREM', K_LEASES, id)
  redis.call('ZADD', K_DONE, NOW, id)
  -- Redis drops the record by itself after retention (plus slack for clock steps);
  -- the sweeper trims the indexes.
  redis.call('PEXPIRE', key, RETENTION + 60000)
  -- Its output (if any) goes with it.
  redis.call('PEXPIRE', OUT .. id, RETENTION + 60000)
  if with_record then return publish_record(id, status, epoch) end
  publish_update(id, status, epoch)
end

local function timeout(id, epoch, code, message)
  finish(id, 'timeout', epoch,
    { 'error', cjson.encode({ code = code, message = message }) })
end

-- Running -> pending at the front of its priority, epoch + 1. attempt_delta: 0 for a
-- lease-expiry requeue, -1 for a release (the attempt never reached a daemon).
-- Returns the new epoch, and with with_record the record (published with the hint).
local function requeue(id, priority, epoch, pending_timeout_ms, attempt_delta, with_record)
  local key = REC .. id
  local new_epoch = tonumber(epoch) + 1
  local deadline = NOW + tonumber(pending_timeout_ms)
  redis.call('HSET', key, 'status', 'pending', 'epoch', new_epoch,
    'pending_deadline', deadline)
  if attempt_delta ~= 0 then redis.call('HINCRBY', key, 'attempt', attempt_delta) end
  redis.call('HDEL', key, 'lease_expires_at', 'connection_id', 'node_id')
  redis.call('ZREM', K_LEASES, id)
  redis.call('ZADD', K_PENDING, pending_score(priority, 0), id)
  redis.call('ZADD', K_DEADLINES, deadline, id)
  local flat = nil
  if with_record then flat = publish_record(id, 'pending', new_epoch)
  else publish_update(id, 'pending', new_epoch) end
  redis.call('PUBLISH', CH_WAKE, '1')
  return new_epoch, flat
end

local function forget(id)
  -- Terminal records have left their line already; a live one forgotten must not stay.
  local ordering_key = redis.call('HGET', REC .. id, 'ordering_key')
  if ordering_key then redis.call('ZREM', LINE .. ordering_key, id) end
  redis.call('DEL', REC .. id, OUT .. id)
  redis.call('ZREM', K_PENDING, id)
  redis.call('ZREM', K_DEADLINES, id)
  redis.call('ZREM', K_LEASES, id)
  redis.call('ZREM', K_DONE, id)
  redis.call('ZREM', K_IDS, id)
end

-- Apply whatever timeout is due for one record. Returns the status after it (nil when
-- the record does not exist or is past retention) and the transition applied, if any:
-- 'timeout' or 'requeue'.
local function settle(id)
  local key = REC .. id
  local r = redis.call('HMGET', key, 'status', 'pending_deadline', 'lease_expires_at',
    'attempt', 'max_attempts', 'epoch', 'priority', 'pending_timeout_ms', 'finished_at')
  local status = r[1]
  if not status then return nil, nil end
  if status == 'pending' then
    if tonumber(r[2]) <= NOW then
      timeout(id, r[6], 'pending_timeout', 'no daemon claimed the request before its pending deadline')
      return 'timeout', 'timeout'
    end
  elseif status == 'running' then
    if tonumber(r[3]) <= NOW then
      if tonumber(r[4]) < tonumber(r[5]) then
        requeue(id, r[7], r[6], r[8], 0)
        return 'pending', 'requeue'
      end
      timeout(id, r[6], 'lease_expired', 'the lease expired and no attempts are left')
      return 'timeout', 'timeout'
    end
  elseif tonumber(r[9]) + RETENTION <= NOW then
    forget(id)
    return nil, nil
  end
  return status, nil
end
