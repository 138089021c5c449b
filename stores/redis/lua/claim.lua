-- claim.lua: claim up to N pending requests for one connection (includes/claiming.lua).
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  max to claim   ARGV[7] connection id   ARGV[8] node id
-- Returns a list of claimed records (each a HGETALL list), possibly empty.
--!include common.lua
--!include record.lua
--!include claiming.lua
return claim_for(tonumber(ARGV[6]), ARGV[7], ARGV[8])
