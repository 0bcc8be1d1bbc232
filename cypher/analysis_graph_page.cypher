// One page of the whole graph for whole-graph analysis: the ids of $limit images after id
// $after (in id order), each with the ids it lists. Ids only: the analysis needs no
// properties, and reading less is what keeps a 200k-image export short.
MATCH (a:Image)
WHERE a.id > $after
WITH a ORDER BY a.id LIMIT $limit
OPTIONAL MATCH (a)-[:SIMILAR_TO]->(b:Image)
WITH a, collect(b.id) AS targets
RETURN a.id AS id, [t IN targets WHERE t IS NOT NULL] AS targets
ORDER BY id
