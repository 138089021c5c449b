-- presence.lua: register/refresh a daemon connection, remove one, or record an HTTP
-- heartbeat. Presence entries carry their own expiry; the sweeper drops lapsed ones.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  'upsert' | 'remove' | 'heartbeat'
-- ARGV[7]  connection id (upsert, remove)   ARGV[8] connection JSON (upsert)
-- ARGV[9]  ttl ms (upsert, heartbeat)
-- Returns now (ms).
--!include common.lua
local op = ARGV[6]
if op == 'remove' then
  redis.call('HDEL', K_CONNS, ARGV[7])
  return NOW
end
local expires = NOW + tonumber(ARGV[9])
if op == 'upsert' then
  local info = cjson.decode(ARGV[8])
  info.expires_at = expires
  redis.call('HSET', K_CONNS, ARGV[7], cjson.encode(info), '~seen', NOW)
else
  redis.call('HSET', K_CONNS, '~http', cjson.encode({ expires_at = expires }), '~seen', NOW)
end
return NOW
