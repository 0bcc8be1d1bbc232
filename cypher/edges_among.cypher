// The SIMILAR_TO edges whose two ends are both in $ids.
UNWIND $ids AS id
MATCH (a:Image {id: id})-[r:SIMILAR_TO]->(b:Image)
WHERE b.id IN $ids
RETURN a.id AS source, b.id AS target, r.rank AS rank
