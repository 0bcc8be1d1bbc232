// A graph written before SIMILAR_TO had its unique index (schema_arcadedb.sql) can hold a pair
// twice, and then the index cannot be built. Makes each such pair one edge again: the copy
// seen last is kept (its rank is the current one) with the earliest first_seen of them all.
MATCH (a:Image)-[r:SIMILAR_TO]->(b:Image)
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
