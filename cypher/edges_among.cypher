// The SIMILAR_TO edges leaving the images $ids, per image, as [target id, rank] pairs; the
// caller keeps those whose target is in $ids too. (Filtering here with `b.id IN $ids` costs
// the server a scan of the list per edge: 4x the CPU for 5,000 ids.)
UNWIND $ids AS id
MATCH (a:Image {id: id})
RETURN a.id AS source, [(a)-[r:SIMILAR_TO]->(b:Image) | [b.id, r.rank]] AS out
