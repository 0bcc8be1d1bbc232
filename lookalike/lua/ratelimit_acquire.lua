-- GCRA: take one request slot, unless the pause key holds requests back.
-- KEYS[1] = TAT key, KEYS[2] = pause key; ARGV[1] = emission interval (µs), ARGV[2] = burst.
-- Returns {granted (0/1), wait µs, now µs}. Numbers are stored with %.0f: Lua's default
-- number-to-string keeps only 14 digits, which would round epoch microseconds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause > now then
  return {0, pause - now, now}
end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, allow_at - now, now}
end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, 0, now}
