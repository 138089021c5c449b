-- report.lua: a daemon's result. Accepted only while running at the same epoch (the
-- fencing token). The accepted report repeated (same epoch, same status) succeeds again.
-- With ARGV[10] > 0 it then claims up to that many pending requests for the reporting
-- connection, as claim.lua would: the slot the result frees is filled in the same call.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  request id   ARGV[7] epoch   ARGV[8] 'completed' | 'failed'
-- ARGV[9]  result JSON (completed) or error JSON (failed)
-- ARGV[10] max to claim after (0: none)   ARGV[11] connection id   ARGV[12] node id
-- Returns {record fields, claimed records}, or E_NOT_FOUND, E_LEASE_LOST,
-- E_ALREADY_TERMINAL (then nothing was claimed).
--!include common.lua
--!include record.lua
--!include claiming.lua
local id, outcome = ARGV[6], ARGV[8]
local status = settle(id)
if not status then return E_NOT_FOUND end
local key = REC .. id
local epoch = redis.call('HGET', key, 'epoch')
if epoch ~= ARGV[7] then return E_LEASE_LOST end
local flat
if status == 'running' then
  local field = 'error'
  if outcome == 'completed' then field = 'result' end
  flat = finish(id, outcome, epoch, { field, ARGV[9] }, true)
elseif status ~= outcome then
  if TERMINAL[status] then return E_ALREADY_TERMINAL end
  return E_LEASE_LOST
else
  flat = redis.call('HGETALL', key)
end
return { flat, claim_for(tonumber(ARGV[10]) or 0, ARGV[11], ARGV[12]) }
