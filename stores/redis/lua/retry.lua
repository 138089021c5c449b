-- retry.lua: the dead-letter replay. Clones a failed, timed-out or cancelled request as a
-- new pending one (same kind, payload, priority, attempts, timeouts and ordering key: it
-- joins the back of its key's line).
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  original id   ARGV[7] new id   ARGV[8] created_by
-- ARGV[9]  MAX_PENDING_PER_RUNTIME
-- Returns the new record's fields, E_NOT_FOUND, E_NOT_RETRYABLE or E_PENDING_LIMIT.
--!include common.lua
--!include record.lua
local status = settle(ARGV[6])
if not status then return E_NOT_FOUND end
if status ~= 'failed' and status ~= 'timeout' and status ~= 'cancelled' then
  return E_NOT_RETRYABLE
end
if redis.call('ZCARD', K_DEADLINES) + 1 > tonumber(ARGV[9]) then return E_PENDING_LIMIT end
local r = redis.call('HMGET', REC .. ARGV[6], 'workspace', 'runtime', 'kind', 'payload',
  'priority', 'max_attempts', 'pending_timeout_ms', 'lease_ms', 'ordering_key')
local flat = insert({ id = ARGV[7], workspace = r[1], runtime = r[2], kind = r[3], payload = r[4],
  priority = r[5], max_attempts = r[6], pending_timeout_ms = r[7], lease_ms = r[8],
  created_by = ARGV[8], retry_of = ARGV[6], ordering_key = r[9] or '' })
redis.call('PUBLISH', CH_WAKE, '1')
return flat
