// One page of the whole graph for export and whole-graph analysis: $limit images after id
// $after (in id order), each with its properties and outgoing SIMILAR_TO edges.
MATCH (a:Image)
WHERE a.id > $after
WITH a ORDER BY a.id LIMIT $limit
OPTIONAL MATCH (a)-[r:SIMILAR_TO]->(b:Image)
WITH a, [x IN collect({target: b.id, rank: r.rank}) WHERE x.target IS NOT NULL] AS edges
RETURN a {.*} AS image, edges
ORDER BY a.id
