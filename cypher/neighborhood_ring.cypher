// One further breadth-first ring of a neighbourhood walk, in one round trip: the images
// adjacent (either direction) to any of $frontier that are not in $known, the first $room
// of them by id, each with what the walk needs to finish without another query:
// [id, elementId, properties (null unless $properties), out-edges as [target elementId, rank]].
// One record holding one list: the driver decodes one message instead of a row per image.
// See neighborhood_start.cypher for why elementIds and why DISTINCT/ORDER BY on the id.
UNWIND $frontier AS id
MATCH (:Image {id: id})-[:SIMILAR_TO]-(b:Image)
WHERE NOT b.id IN $known
WITH DISTINCT b.id AS bid, b
ORDER BY bid
LIMIT $room
RETURN collect([bid, elementId(b), CASE WHEN $properties THEN b {.*} END,
                [(b)-[r:SIMILAR_TO]->(c) | [elementId(c), r.rank]]]) AS ring
