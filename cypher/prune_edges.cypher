// After re-fetching row.source: remove the SIMILAR_TO edges the catalogue no longer lists.
UNWIND $rows AS row
MATCH (a:Image {id: row.source})-[r:SIMILAR_TO]->(b:Image)
WHERE NOT b.id IN row.targets
DELETE r
RETURN count(*) AS removed
