-- presence.lua: register/refresh a daemon connection, remove one, or record an HTTP
-- heartbeat. Presence entries carry their own expiry; the sweeper drops lapsed ones.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  'upsert' | 'remove' | 'heartbeat'
-- ARGV[7]  connection id (remove)   ARGV[8] ttl ms (upsert, heartbeat)
-- ARGV[9..] upsert: connection id, connection JSON, for each of its connections (one
--           node refreshes all it holds of a runtime in one call, one HSET)
-- Returns now (ms).
--!include common.lua
local op = ARGV[6]
if op == 'remove' then
  redis.call('HDEL', K_CONNS, ARGV[7])
  return NOW
end
local expires = NOW + tonumber(ARGV[8])
if op == 'upsert' then
  local fields = { '~seen', NOW }
  for i = 9, #ARGV, 2 do
    local info = cjson.decode(ARGV[i + 1])
    info.expires_at = expires
    fields[#fields + 1] = ARGV[i]
    fields[#fields + 1] = cjson.encode(info)
  end
  redis.call('HSET', K_CONNS, unpack(fields))
else
  redis.call('HSET', K_CONNS, '~http', cjson.encode({ expires_at = expires }), '~seen', NOW)
end
return NOW
