-- list.lua: one page of a runtime's requests, newest first, optionally by status.
-- Walks the id index from the cursor, settling each record, and stops after `limit`
-- matches or `budget` records examined (then the cursor resumes where it stopped).
-- A full page looks ahead for one more match (within the budget), so the cursor is ''
-- when nothing follows, as in the memory store: never a cursor to an empty page, unless
-- the budget ran out before the index did.
-- `running` is read from the leases instead: exact, whatever the budget.
-- With an ordering key it lists that key's line instead, in line order (head first):
-- its live requests; the cursor is then a position in the line.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  status filter or ''   ARGV[7] limit   ARGV[8] cursor (an id, or a line
-- position with ARGV[10]) or ''   ARGV[9] budget (max records examined)
-- ARGV[10] ordering key or ''
-- Returns {next_cursor or '', record, record, ...}.
--!include common.lua
--!include record.lua
local want, limit, budget = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[9])
local out = { '' }
if ARGV[10] ~= '' then
  local line = LINE .. ARGV[10]
  local min = ARGV[8] == '' and '-inf' or ('(' .. ARGV[8])
  local examined, last, page_end = 0, nil, nil
  while examined < budget do
    local batch = redis.call('ZRANGEBYSCORE', line, min, '+inf', 'WITHSCORES', 'LIMIT', 0,
      math.min(100, budget - examined))
    if #batch == 0 then return out end
    for i = 1, #batch, 2 do
      local id, pos = batch[i], batch[i + 1]
      examined = examined + 1
      last = pos
      -- Settling may time it out: then it has left the line and is not listed.
      local status = settle(id)
      if status and not TERMINAL[status] and (want == '' or status == want) then
        if page_end then
          out[1] = page_end
          return out
        end
        out[#out + 1] = redis.call('HGETALL', REC .. id)
        if #out - 1 == limit then page_end = pos end
      end
    end
    min = '(' .. last
  end
  if #redis.call('ZRANGEBYSCORE', line, min, '+inf', 'LIMIT', 0, 1) == 0 then return out end
  out[1] = last
  return out
end
if want == 'running' then
  -- Running requests are exactly the leases: read them from there, whatever the budget
  -- (a node looking for its orphaned claims must find all of them).
  local running = {}
  for _, id in ipairs(redis.call('ZRANGE', K_LEASES, 0, -1)) do
    if settle(id) == 'running' and (ARGV[8] == '' or id < ARGV[8]) then
      running[#running + 1] = id
    end
  end
  table.sort(running, function(a, b) return a > b end)
  for i = 1, math.min(limit, #running) do
    out[#out + 1] = redis.call('HGETALL', REC .. running[i])
  end
  if #running > limit then out[1] = running[limit] end
  return out
end
local max = ARGV[8] == '' and '+' or ('(' .. ARGV[8])
local examined, last, page_end = 0, nil, nil
while examined < budget do
  local ids = redis.call('ZREVRANGEBYLEX', K_IDS, max, '-', 'LIMIT', 0,
    math.min(100, budget - examined))
  if #ids == 0 then return out end
  for _, id in ipairs(ids) do
    examined = examined + 1
    last = id
    local status = settle(id)
    if status == nil then
      redis.call('ZREM', K_IDS, id)
    elseif want == '' or status == want then
      if page_end then
        -- One match past the full page: the next page starts after the page's last id.
        out[1] = page_end
        return out
      end
      out[#out + 1] = redis.call('HGETALL', REC .. id)
      if #out - 1 == limit then page_end = id end
    end
  end
  max = '(' .. last
end
-- Budget spent: resume after the last id examined, unless the index ends there.
if #redis.call('ZREVRANGEBYLEX', K_IDS, max, '-', 'LIMIT', 0, 1) == 0 then return out end
out[1] = last
return out
