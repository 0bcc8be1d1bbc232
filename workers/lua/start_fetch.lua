-- KEYS: prefix, hints, embed hints. ARGV: id, depth, deadline. Claims a fetch like claim.lua,
-- and says whether this fetch is expected to hash the image (no listing stored it yet in this
-- crawl, or one did and deferred its hash to this fetch), with the image's hints (what was
-- last hashed and embedded).
local p, id = KEYS[1], ARGV[1]
if redis.call('HGET', p .. 'meta', 'status') ~= 'running' then return {0, 0, '', ''} end
local key = p .. 'pending:' .. ARGV[2]
if redis.call('HEXISTS', key, id) == 0 then return {0, 0, '', ''} end
redis.call('HSET', key, id, ARGV[3])
local hash = redis.call('SISMEMBER', p .. 'nodes', id) == 0
  or redis.call('SISMEMBER', p .. 'deferred', id) == 1
return {1, hash and 1 or 0, redis.call('HGET', KEYS[2], id) or '',
        redis.call('HGET', KEYS[3], id) or ''}
