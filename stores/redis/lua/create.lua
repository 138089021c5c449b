-- create.lua: insert one or more pending requests, all or none; idempotent by key.
-- KEYS[1..6]  see includes/common.lua
-- KEYS[7]     idempotency key (only when ARGV[8] is not '')
-- ARGV[1..5]  see includes/common.lua
-- ARGV[6]     workspace   ARGV[7] runtime
-- ARGV[8]     body fingerprint for the idempotency key, or ''
-- ARGV[9]     idempotency key TTL ms
-- ARGV[10]    MAX_PENDING_PER_RUNTIME: refused whole (E_PENDING_LIMIT) past it
-- ARGV[11]    item count N, then N groups of 11:
--             id, kind, payload, priority, max_attempts, pending_timeout_ms, lease_ms,
--             created_by, ordering_key ('' for none; items join their key's line in
--             item order), traceparent, tracestate ('' for none: not stored)
-- Returns {1, now} when created; {0, record fields} when the idempotency key already
-- names a request created from the same body; E_IDEMPOTENCY_CONFLICT otherwise;
-- E_PENDING_LIMIT when the runtime's pending count would pass ARGV[10].
--!include common.lua
--!include record.lua
local fingerprint = ARGV[8]
if fingerprint ~= '' then
  local existing = redis.call('GET', KEYS[7])
  if existing then
    local sep = string.find(existing, ' ', 1, true)
    local id = string.sub(existing, sep + 1)
    if settle(id) then
      if string.sub(existing, 1, sep - 1) ~= fingerprint then return E_IDEMPOTENCY_CONFLICT end
      return { 0, redis.call('HGETALL', REC .. id) }
    end
  end
end
local n = tonumber(ARGV[11])
-- Every pending request, claimable or not, has a pending deadline.
if redis.call('ZCARD', K_DEADLINES) + n > tonumber(ARGV[10]) then return E_PENDING_LIMIT end
for i = 0, n - 1 do
  local b = 11 + i * 11
  insert({ id = ARGV[b + 1], workspace = ARGV[6], runtime = ARGV[7], kind = ARGV[b + 2],
    payload = ARGV[b + 3], priority = ARGV[b + 4], max_attempts = ARGV[b + 5],
    pending_timeout_ms = ARGV[b + 6], lease_ms = ARGV[b + 7], created_by = ARGV[b + 8],
    retry_of = '', ordering_key = ARGV[b + 9], traceparent = ARGV[b + 10],
    tracestate = ARGV[b + 11] })
end
if fingerprint ~= '' then
  redis.call('SET', KEYS[7], fingerprint .. ' ' .. ARGV[12], 'PX', ARGV[9])
end
redis.call('PUBLISH', CH_WAKE, '1')
return { 1, NOW }
