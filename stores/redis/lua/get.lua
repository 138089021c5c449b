-- get.lua: read one record after applying any timeout that is due (lazy expiry).
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  request id
-- Returns the record fields (HGETALL), or E_NOT_FOUND.
--!include common.lua
--!include record.lua
local id = ARGV[6]
if not settle(id) then return E_NOT_FOUND end
return redis.call('HGETALL', REC .. id)
