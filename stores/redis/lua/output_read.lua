-- output_read.lua: up to `limit` output chunks of a request after an offset.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  request id   ARGV[7] after (offset)   ARGV[8] limit
-- Returns E_NOT_FOUND or {terminal (1/0), last offset stored, XRANGE entries}.
--!include common.lua
--!include record.lua
local id, after = ARGV[6], tonumber(ARGV[7])
local status = settle(id)
if not status then return E_NOT_FOUND end
local n = tonumber(redis.call('HGET', REC .. id, 'out_n')) or 0
local entries = {}
if n > after then
  entries = redis.call('XRANGE', OUT .. id, (after + 1) .. '-0', '+', 'COUNT', ARGV[8])
end
local terminal = 0
if TERMINAL[status] then terminal = 1 end
return { terminal, n, entries }
