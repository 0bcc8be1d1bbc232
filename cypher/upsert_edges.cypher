// Record that row.source lists row.target among its similar images at position row.rank.
// first_seen is kept from the first time the edge was seen; last_seen moves forward.
UNWIND $rows AS row
MATCH (a:Image {id: row.source})
MATCH (b:Image {id: row.target})
MERGE (a)-[r:SIMILAR_TO]->(b)
ON CREATE SET r.first_seen = row.seen
SET r.rank = row.rank, r.last_seen = row.seen
RETURN count(r) AS edges
