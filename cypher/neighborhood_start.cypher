// The first step of a neighbourhood walk, in one round trip: the start image and its first
// ring (images adjacent to it in either direction). No row when the image does not exist, so
// the walk needs no separate existence check.
//
// Each image comes as [id, elementId, properties (null unless $properties), out-edges], its
// out-edges as [elementId of the target, rank]: the walk joins edges to the images it admits
// by elementId inside this one read transaction, which spares the server loading every
// target just to read its id (a third of the walk's server time). Element ids never leave
// the transaction.
//
// The ring is the first $room images by id (the caller asks one more than it can admit, to
// learn whether the ring was cut). DISTINCT on the id string, not the node, then ORDER BY
// that string: measurably cheaper on ArcadeDB than ordering nodes by a property.
MATCH (s:Image {id: $id})
OPTIONAL MATCH (s)-[:SIMILAR_TO]-(b:Image)
WHERE b <> s
WITH DISTINCT s, b.id AS bid, b
ORDER BY bid
LIMIT $room
WITH s, collect(CASE WHEN b IS NULL THEN null ELSE
    [bid, elementId(b), CASE WHEN $properties THEN b {.*} END,
     [(b)-[r:SIMILAR_TO]->(c) | [elementId(c), r.rank]]] END) AS ring
RETURN [s.id, elementId(s), CASE WHEN $properties THEN s {.*} END,
        [(s)-[r:SIMILAR_TO]->(c) | [elementId(c), r.rank]]] AS start,
       ring
