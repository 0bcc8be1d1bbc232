-- KEYS: prefix. ARGV: now. Marks the crawl done when fetching is over and no hash is
-- outstanding. Needs maybe_finish_function.lua before it.
if maybe_finish(KEYS[1], ARGV[1]) then return 1 end
return 0
