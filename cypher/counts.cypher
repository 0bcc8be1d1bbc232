// How big the graph is.
MATCH (i:Image)
WITH count(i) AS images, count(i.phash) AS hashed, count(i.hash_error) AS hash_failed
OPTIONAL MATCH ()-[r:SIMILAR_TO]->()
RETURN images, hashed, hash_failed, count(r) AS edges
