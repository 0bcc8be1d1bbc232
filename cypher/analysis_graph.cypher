// The whole graph for whole-graph analysis, streamed: every image's id and the ids it lists.
// Ids only: the analysis needs no properties, and reading less keeps a 200k-image read short.
MATCH (a:Image)
RETURN a.id AS id, [(a)-[:SIMILAR_TO]->(b) | b.id] AS targets
