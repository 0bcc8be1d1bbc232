// Remove LOOKS_LIKE pairs no longer among the top-k. $rows: [{a, b, refined}].
UNWIND $rows AS row
MATCH (a:Image {id: row.a})-[r:LOOKS_LIKE]->(b:Image {id: row.b})
WHERE r.refined = row.refined
DELETE r
RETURN count(*) AS removed
