// The stored lookalikes of one image, best first ($refined: by the refined embedding or not).
MATCH (i:Image {id: $id})-[r:LOOKS_LIKE]->(o:Image)
WHERE r.refined = $refined
RETURN o.id AS id, r.score AS score, r.model AS model, r.refined AS refined
ORDER BY score DESC, id
