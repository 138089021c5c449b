-- release.lua: a node claimed a request but could not hand it over; back to pending at
-- the front, epoch + 1, and the attempt is given back.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  request id   ARGV[7] epoch of the claim
-- Returns the record fields, E_NOT_FOUND or E_LEASE_LOST.
--!include common.lua
--!include record.lua
local id = ARGV[6]
local status = settle(id)
if not status then return E_NOT_FOUND end
local key = REC .. id
local r = redis.call('HMGET', key, 'epoch', 'priority', 'pending_timeout_ms')
if status ~= 'running' or r[1] ~= ARGV[7] then return E_LEASE_LOST end
local _, flat = requeue(id, r[2], r[1], r[3], -1, true)
return flat
