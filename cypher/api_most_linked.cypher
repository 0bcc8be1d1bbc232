// The images with the most SIMILAR_TO edges (either direction): a good default seed to draw.
MATCH (i:Image)
WITH i, COUNT { (i)-[:SIMILAR_TO]-() } AS degree
RETURN i.id AS id, degree
ORDER BY degree DESC, id
LIMIT $limit
