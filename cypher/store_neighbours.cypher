// Images listed as similar: their data comes with the listing, so they are stored as nodes
// even when the crawl will not expand them. fetched_at is not touched (they were not fetched).
// A node is written only when the listing changes something: a popular image is listed by
// many others at once, and rewriting it unchanged makes concurrent crawl transactions collide.
UNWIND $rows AS row
MERGE (i:Image {id: row.id})
WITH i, row
WHERE any(k IN keys(row.props) WHERE i[k] IS NULL OR i[k] <> row.props[k])
SET i += row.props
RETURN count(i) AS images
