// One crawl's summary as kept in the graph (after Redis has forgotten it).
MATCH (c:Crawl {id: $id})
RETURN c {.*} AS crawl
