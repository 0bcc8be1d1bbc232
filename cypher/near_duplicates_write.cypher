// Near-duplicate pairs found by the index sidecar. $rows: [{a, b, kind, distance, mirrored}]
// with a < b (one relationship per pair and hash kind, pointing from the smaller id).
// $run tags what this run wrote, so near_duplicates_prune can drop what it no longer finds.
UNWIND $rows AS row
MATCH (a:Image {id: row.a})
MATCH (b:Image {id: row.b})
MERGE (a)-[r:NEAR_DUPLICATE {kind: row.kind}]->(b)
SET r.distance = row.distance, r.mirrored = row.mirrored, r.run = $run
RETURN count(r) AS written
