// One breadth-first hop: images adjacent (either direction) to any of $ids that are not yet
// in $known. Returning distinct ids only keeps each hop cheap on both backends.
UNWIND $ids AS id
MATCH (:Image {id: id})-[:SIMILAR_TO]-(b:Image)
WHERE NOT b.id IN $known
RETURN DISTINCT b.id AS id
