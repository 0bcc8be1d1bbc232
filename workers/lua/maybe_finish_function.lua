-- The end of every completion: the crawl is done once fetching is over and no hash is
-- outstanding. Joined in front of the scripts that call it (Redis runs one source per
-- script), so finishing costs no extra round trip.
local function maybe_finish(p, now)
  if redis.call('HGET', p .. 'meta', 'status') ~= 'running' then return false end
  if redis.call('HGET', p .. 'meta', 'fetch_done') ~= '1' then return false end
  if redis.call('HLEN', p .. 'hashing') > 0 then return false end
  redis.call('HSET', p .. 'meta', 'status', 'done', 'finished_at', now)
  return true
end
