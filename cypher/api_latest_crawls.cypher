// Finished crawls' summaries kept in the graph (counts is JSON text), newest first.
MATCH (c:Crawl)
RETURN c {.*} AS crawl
ORDER BY c.created_at DESC, c.id DESC
LIMIT $limit
