-- cancel.lua: a client cancels a pending or running request.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  request id   ARGV[7] message
-- Returns the record fields, E_NOT_FOUND or E_ALREADY_TERMINAL.
--!include common.lua
--!include record.lua
local id = ARGV[6]
local status = settle(id)
if not status then return E_NOT_FOUND end
if TERMINAL[status] then return E_ALREADY_TERMINAL end
local key = REC .. id
return finish(id, 'cancelled', redis.call('HGET', key, 'epoch'),
  { 'error', cjson.encode({ code = 'cancelled', message = ARGV[7] }) }, true)
