// A graph written before SIMILAR_TO had its unique index (schema_arcadedb.sql) can hold a pair
// twice, and then the index cannot be built. $rows: [{source, target}], pairs stored more than
// once (GraphStore.merge_duplicate_edges finds them in the analysis_graph stream: one GROUP BY
// over a whole graph of 1M edges exceeds the server's query memory). Makes each pair one edge
// again: the copy seen last is kept (its rank is the current one) with the earliest
// first_seen of them all.
UNWIND $rows AS row
MATCH (a:Image {id: row.source})-[r:SIMILAR_TO]->(b:Image {id: row.target})
WITH a, b, collect(r) AS copies
WHERE size(copies) > 1
WITH copies,
     reduce(k = head(copies), x IN copies |
            CASE WHEN coalesce(x.last_seen, 0) > coalesce(k.last_seen, 0) THEN x ELSE k END) AS keep,
     reduce(f = head(copies).first_seen, x IN copies |
            CASE WHEN f IS NULL OR x.first_seen < f THEN x.first_seen ELSE f END) AS first_seen
SET keep.first_seen = first_seen
WITH copies, keep
UNWIND [x IN copies WHERE x <> keep] AS extra
DELETE extra
RETURN count(extra) AS removed
