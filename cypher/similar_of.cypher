// The images one image lists as similar, best first.
MATCH (i:Image {id: $id})-[r:SIMILAR_TO]->(s:Image)
RETURN s {.*} AS image, r.rank AS rank, r.first_seen AS first_seen, r.last_seen AS last_seen
ORDER BY r.rank
