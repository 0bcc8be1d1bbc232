// The whole graph, streamed: every image's id and the ids it lists (for whole-graph analysis,
// and for GraphStore.merge_duplicate_edges to find pairs stored twice).
// Ids only: the analysis needs no properties, and reading less keeps a 200k-image read short.
MATCH (a:Image)
RETURN a.id AS id, [(a)-[:SIMILAR_TO]->(b) | b.id] AS targets
