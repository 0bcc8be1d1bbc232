// Images listed as similar: their data comes with the listing, so they are stored as nodes
// even when the crawl will not expand them. fetched_at is not touched (they were not fetched).
UNWIND $rows AS row
MERGE (i:Image {id: row.id})
SET i += row.props
RETURN count(i) AS images
