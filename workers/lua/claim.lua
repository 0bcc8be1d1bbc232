-- KEYS: meta, the pending (or hashing) hash. ARGV: id, deadline. A worker starting an image
-- takes its lease; returns 0 when the crawl no longer runs or the image is no longer pending
-- (a duplicate delivery).
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
