// The index sidecar's read of the catalogue's SIMILAR_TO edges, a page of sources at a time
// in id order: what refines the embeddings and what the audit checks.
// $after: the last source id of the previous page ("" for the first); $limit: sources per page.
MATCH (a:Image)
WHERE a.id > $after
WITH a ORDER BY a.id LIMIT $limit
OPTIONAL MATCH (a)-[r:SIMILAR_TO]->(b:Image)
RETURN a.id AS source, [x IN collect({target: b.id, rank: r.rank}) WHERE x.target IS NOT NULL]
       AS edges
ORDER BY source
