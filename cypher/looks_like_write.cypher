// Lookalikes found by the index sidecar: b is among a's top-k images by embedding cosine.
// $rows: [{a, b, score, refined}]; refined: by the graph-refined embedding, else the raw one.
// $model: the embedding model; $run tags what this run wrote (see looks_like_prune).
UNWIND $rows AS row
MATCH (a:Image {id: row.a})
MATCH (b:Image {id: row.b})
MERGE (a)-[r:LOOKS_LIKE {refined: row.refined}]->(b)
SET r.score = row.score, r.model = $model, r.run = $run
RETURN count(r) AS written
