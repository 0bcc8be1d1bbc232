// A crawl's summary, kept in the graph so it can be queried after Redis forgets it.
MERGE (c:Crawl {id: $id})
SET c += $props
RETURN c.id AS id
