-- rate.lua: the create-rate token bucket of one workspace (CREATE_RATE_PER_WORKSPACE);
-- the arithmetic of stores/rate.ts takeTokens, which the memory store runs.
-- KEYS[1]  the workspace's bucket (HASH tokens, at)
-- ARGV[1]  now in ms, or '' to use Redis TIME   ARGV[2] rate per second
-- ARGV[3]  burst   ARGV[4] tokens wanted (requests in the create)   ARGV[5] key TTL ms
-- Returns 0 when taken, else the ms until they will be there.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local rate, burst, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
local elapsed = now - at
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate / 1000)
local need = math.min(n, burst)
local wait = 0
if tokens >= need then
  tokens = tokens - n
else
  wait = math.max(1, math.ceil((need - tokens) * 1000 / rate))
end
-- Fractions survive as text (a Lua number reply would be truncated).
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return wait
