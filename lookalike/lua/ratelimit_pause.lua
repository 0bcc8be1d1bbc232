-- KEYS[1] = pause key; ARGV[1] = pause length (µs). Only ever extends the pause: a shorter
-- Retry-After seen later by another worker must not cut a longer one short. Returns the pause
-- now in force (µs).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local target = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if target > current then
  local ttl_ms = math.ceil((target - now) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', target), 'PX', ttl_ms)
  current = target
end
if current > now then return current - now end
return 0
