-- common.lua: the calling convention shared by every per-runtime script.
-- KEYS[1] pending     ZSET pending ids, score = priority band + creation order
-- KEYS[2] deadlines   ZSET pending ids by pending deadline (ms)
-- KEYS[3] leases      ZSET running ids by lease expiry (ms)
-- KEYS[4] done        ZSET terminal ids by finished_at (ms)
-- KEYS[5] ids         ZSET (all scores 0) of every live or retained id, for listing
-- KEYS[6] conns       HASH connection id -> presence JSON; '~http' and '~seen' fields
-- ARGV[1] record key prefix (the record of id X is ARGV[1]..X)
-- ARGV[2] now in ms, or '' to use Redis TIME (one clock for every node)
-- ARGV[3] updates channel   ARGV[4] wake channel   ARGV[5] retention ms
-- Script-specific arguments start at ARGV[6].
local K_PENDING, K_DEADLINES, K_LEASES = KEYS[1], KEYS[2], KEYS[3]
local K_DONE, K_IDS, K_CONNS = KEYS[4], KEYS[5], KEYS[6]
local REC = ARGV[1]
-- The output stream of id X is OUT..X: REC with 'req:' replaced by 'out:' (keys.ts
-- `output(id)` builds the same name).
local OUT = string.sub(REC, 1, -5) .. 'out:'
-- The line of ordering key K is LINE..K (keys.ts `line(key)`): ZSET of the key's live
-- ids, score = position in the line (creation order); its first member is the head.
local LINE = string.sub(REC, 1, -5) .. 'line:'
local NOW = tonumber(ARGV[2])
if not NOW then
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local CH_UPDATES, CH_WAKE = ARGV[3], ARGV[4]
local RETENTION = tonumber(ARGV[5])

-- Error codes (stores/errors.ts maps them to typed errors).
local E_NOT_FOUND, E_LEASE_LOST, E_ALREADY_TERMINAL = -1, -2, -3
local E_IDEMPOTENCY_CONFLICT, E_NOT_RETRYABLE = -4, -5
local E_OUTPUT_LIMIT, E_SEQ_GAP, E_PENDING_LIMIT = -6, -7, -8

local TERMINAL = { completed = true, failed = true, timeout = true, cancelled = true }
