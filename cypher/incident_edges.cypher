// Every SIMILAR_TO edge touching any of $ids, in either direction: one breadth-first hop of a
// neighbourhood. Returning ids (not Path objects) keeps hot queries ~10x faster on ArcadeDB.
UNWIND $ids AS id
MATCH (a:Image {id: id})-[r:SIMILAR_TO]-(b:Image)
RETURN startNode(r).id AS source, endNode(r).id AS target, r.rank AS rank
