-- report.lua: a daemon's result. Accepted only while running at the same epoch (the
-- fencing token). The accepted report repeated (same epoch, same status) succeeds again.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  request id   ARGV[7] epoch   ARGV[8] 'completed' | 'failed'
-- ARGV[9]  result JSON (completed) or error JSON (failed)
-- Returns the record fields, or E_NOT_FOUND, E_LEASE_LOST, E_ALREADY_TERMINAL.
--!include common.lua
--!include record.lua
local id, outcome = ARGV[6], ARGV[8]
local status = settle(id)
if not status then return E_NOT_FOUND end
local key = REC .. id
local epoch = redis.call('HGET', key, 'epoch')
if epoch ~= ARGV[7] then return E_LEASE_LOST end
if status == 'running' then
  if outcome == 'completed' then
    return finish(id, 'completed', epoch, { 'result', ARGV[9] }, true)
  end
  return finish(id, 'failed', epoch, { 'error', ARGV[9] }, true)
elseif status ~= outcome then
  if TERMINAL[status] then return E_ALREADY_TERMINAL end
  return E_LEASE_LOST
end
return redis.call('HGETALL', key)
