-- renew.lua: extend the lease of a running request held at the given epoch.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  request id   ARGV[7] epoch
-- Returns the record fields, E_NOT_FOUND or E_LEASE_LOST.
--!include common.lua
--!include record.lua
local id = ARGV[6]
local status = settle(id)
if not status then return E_NOT_FOUND end
local key = REC .. id
local r = redis.call('HMGET', key, 'epoch', 'lease_ms')
if status ~= 'running' or r[1] ~= ARGV[7] then return E_LEASE_LOST end
local expires = NOW + tonumber(r[2])
redis.call('HSET', key, 'lease_expires_at', expires)
redis.call('ZADD', K_LEASES, expires, id)
return redis.call('HGETALL', key)
