-- output.lua: append output chunks of a request running at the given epoch (DESIGN.md
-- section 6). Chunks carry the daemon's seq (per attempt): a seq already stored is
-- skipped, the next one is stored at the next offset, a later one stops the call
-- (E_SEQ_GAP), and so does one past MAX_OUTPUT_CHUNKS or MAX_OUTPUT_BYTES
-- (E_OUTPUT_LIMIT); chunks before a refusal stay stored. The record hash keeps the
-- stream's state: out_n (last offset), out_bytes, and out_epoch / out_seq (the attempt
-- that wrote last and its last seq). Publishes one update hint for what it stored.
-- KEYS[1..6], ARGV[1..5]  see includes/common.lua
-- ARGV[6]  request id   ARGV[7] epoch   ARGV[8] max chunks   ARGV[9] max bytes
-- ARGV[10] chunk count, then per chunk: seq, data (JSON text)
-- Returns E_NOT_FOUND, E_LEASE_LOST, or
-- {epoch, acked seq, refusal (0, E_SEQ_GAP or E_OUTPUT_LIMIT), first offset stored,
--  first seq stored, count stored}.
--!include common.lua
--!include record.lua
local id, epoch = ARGV[6], ARGV[7]
local status = settle(id)
if not status then return E_NOT_FOUND end
local key = REC .. id
local r = redis.call('HMGET', key, 'epoch', 'out_n', 'out_bytes', 'out_epoch', 'out_seq')
if status ~= 'running' or r[1] ~= epoch then return E_LEASE_LOST end
local n = tonumber(r[2]) or 0
local bytes = tonumber(r[3]) or 0
local seq = 0
if r[4] == epoch then seq = tonumber(r[5]) end
local max_chunks, max_bytes = tonumber(ARGV[8]), tonumber(ARGV[9])
local stream = OUT .. id
local first_offset, first_seq, stored, refused = n + 1, 0, 0, 0
local data_list, data_bytes = {}, 0
for i = 0, tonumber(ARGV[10]) - 1 do
  local s, data = tonumber(ARGV[11 + 2 * i]), ARGV[12 + 2 * i]
  if s > seq then
    if s ~= seq + 1 then
      refused = E_SEQ_GAP
      break
    end
    if n + 1 > max_chunks or bytes + #data > max_bytes then
      refused = E_OUTPUT_LIMIT
      break
    end
    n = n + 1
    bytes = bytes + #data
    seq = s
    redis.call('XADD', stream, n .. '-0', 'e', epoch, 'd', data)
    if stored == 0 then first_seq = s end
    stored = stored + 1
    data_list[stored] = data
    data_bytes = data_bytes + #data
  end
end
if stored > 0 then
  redis.call('HSET', key, 'out_n', n, 'out_bytes', bytes, 'out_epoch', epoch, 'out_seq', seq)
  -- The hint's form is stores/hints.ts encodeOutputHint's.
  local hint = '{"id":' .. cjson.encode(id) .. ',"status":"running","epoch":' .. epoch ..
    ',"output":{"from":' .. first_offset .. ',"count":' .. stored
  if data_bytes <= HINT_RECORD_BYTES then
    hint = hint .. ',"data":[' .. table.concat(data_list, ',') .. ']'
  end
  redis.call('PUBLISH', CH_UPDATES, hint .. '}}')
end
return { tonumber(epoch), seq, refused, first_offset, first_seq, stored }
