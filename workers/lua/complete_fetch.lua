-- One fetched image's completion, atomically: remove it from pending, record what its listing
-- stored and its neighbours, and if this level is now empty open the next one.
-- KEYS: prefix, hints, embed hints. ARGV: id, depth, now, lease_ms, neighbours_json,
-- stored_json, inline ("1": the fetching worker hashes the images it fetches itself), edges,
-- prehashed ("1": it already did, and the hashes were written with the fetch), hint (the
-- image's hint then), embed hint ('' for none), embedded ("1": a vector was made).
-- Needs maybe_finish_function.lua before it.
local p = KEYS[1]
local id, d = ARGV[1], tonumber(ARGV[2])
local now, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
local inline, prehashed = ARGV[7] == '1', ARGV[9] == '1'
local conf = redis.call('HMGET', p .. 'meta', 'depth', 'max_images')
local max_depth, max_images = tonumber(conf[1] or '0'), tonumber(conf[2] or '0')
if redis.call('HDEL', p .. 'pending:' .. d, id) == 0 then
  return cjson.encode({duplicate = true})
end
redis.call('SADD', p .. 'done', id)
redis.call('HINCRBY', p .. 'counts', 'fetched', 1)
if tonumber(ARGV[8]) > 0 then redis.call('HINCRBY', p .. 'counts', 'edges', ARGV[8]) end
local dr = tonumber(redis.call('HGET', p .. 'counts', 'depth_reached') or '0')
if d > dr then redis.call('HSET', p .. 'counts', 'depth_reached', d) end
local out = {hash = {}, advance = false, next = {}, finished = false, hash_self = false,
             hashed = false}
local function hash_later(nid)  -- a hash task will be queued for it
  redis.call('HSET', p .. 'hashing', nid, -now)
  table.insert(out.hash, nid)
end
local function hash_here(nid)  -- the worker that fetched it hashes it (or did), under a lease
  out.hash_self = true
  if prehashed then
    redis.call('HINCRBY', p .. 'counts', 'hashed', 1)
    redis.call('HSET', KEYS[2], nid, ARGV[10])
    if ARGV[11] ~= '' then redis.call('HSET', KEYS[3], nid, ARGV[11]) end
    if ARGV[12] == '1' then redis.call('HINCRBY', p .. 'counts', 'embedded', 1) end
    out.hashed = true
  else
    redis.call('HSET', p .. 'hashing', nid, now + lease)
  end
end
-- Every image the listing stored needs hashing once per crawl. With inline hashing, an image
-- that will be fetched anyway (later in this level, or at the next one) waits in 'deferred'
-- so that its own fetch hashes it; the others get hash tasks.
local was_deferred = redis.call('SREM', p .. 'deferred', id) == 1
local stored_self = false
for _, item in ipairs(cjson.decode(ARGV[6])) do
  local nid, url = item[1], item[2]
  if nid == id then
    stored_self = true
    redis.call('HSET', p .. 'thumbs', nid, url)
  end
  if redis.call('SADD', p .. 'nodes', nid) == 1 then
    redis.call('HSET', p .. 'thumbs', nid, url)
    if not inline then
      hash_later(nid)
    elseif nid == id then
      hash_here(nid)
    elseif (d < max_depth and redis.call('SISMEMBER', p .. 'done', nid) == 0)
        or redis.call('HEXISTS', p .. 'pending:' .. d, nid) == 1 then
      -- To be fetched at the next level, or still at this one (even the last: a batch
      -- often lists its own images).
      redis.call('SADD', p .. 'deferred', nid)
    else
      hash_later(nid)
    end
  elseif nid == id and was_deferred then
    hash_here(nid)
  end
end
if was_deferred and not stored_self then
  hash_later(id)  -- its fetch failed: hash it from the listing that named it
end
if d < max_depth then
  local order = tonumber(redis.call('HGET', p .. 'order:' .. d, id) or '0')
  for rank, nid in ipairs(cjson.decode(ARGV[5])) do
    if redis.call('SISMEMBER', p .. 'seen', nid) == 0 then
      redis.call('ZADD', p .. 'next:' .. (d + 1), 'LT', order * 64 + rank, nid)
    end
  end
end
if redis.call('HLEN', p .. 'pending:' .. d) == 0 then
  -- This level is complete: open the next one, in breadth-first order, within the budget.
  local nxt = {}
  local cut = 0  -- where the images left out by the budget start in next:(d+1)
  if d < max_depth then
    if max_images > 0 then
      local remaining = max_images - redis.call('SCARD', p .. 'seen')
      if remaining > 0 then
        nxt = redis.call('ZRANGE', p .. 'next:' .. (d + 1), 0, remaining - 1)
        cut = remaining
      end
    else
      nxt = redis.call('ZRANGE', p .. 'next:' .. (d + 1), 0, -1)
      cut = -1
    end
  end
  if cut >= 0 then
    -- Deferred images the budget leaves out will never be fetched: hash them by task.
    for _, nid in ipairs(redis.call('ZRANGE', p .. 'next:' .. (d + 1), cut, -1)) do
      if redis.call('SREM', p .. 'deferred', nid) == 1 then hash_later(nid) end
    end
  end
  redis.call('DEL', p .. 'next:' .. (d + 1))
  for i, nid in ipairs(nxt) do
    redis.call('SADD', p .. 'seen', nid)
    redis.call('HSET', p .. 'pending:' .. (d + 1), nid, -now)
    redis.call('HSET', p .. 'order:' .. (d + 1), nid, i)
  end
  out.advance = true
  out.next = nxt
  if #nxt == 0 then
    redis.call('HSET', p .. 'meta', 'fetch_done', 1)
    -- Nothing is fetched any more, so nothing deferred can wait for its fetch.
    for _, nid in ipairs(redis.call('SMEMBERS', p .. 'deferred')) do hash_later(nid) end
    redis.call('DEL', p .. 'deferred')
  else
    redis.call('HSET', p .. 'meta', 'level', d + 1)
  end
end
out.finished = maybe_finish(p, ARGV[3])
return cjson.encode(out)
