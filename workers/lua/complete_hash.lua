-- KEYS: prefix, hints, embed hints. ARGV: id, field, now, hint ('' for none), embed hint ('' for
-- none), embedded ("1": a vector was made). Returns 0 if this completion was a duplicate, 1 if
-- it counted, 2 if it counted and finished the crawl.
-- Needs maybe_finish_function.lua before it.
local p = KEYS[1]
if redis.call('HDEL', p .. 'hashing', ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', p .. 'counts', ARGV[2], 1)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[5]) end
if ARGV[6] == '1' then redis.call('HINCRBY', p .. 'counts', 'embedded', 1) end
if maybe_finish(p, ARGV[3]) then return 2 end
return 1
