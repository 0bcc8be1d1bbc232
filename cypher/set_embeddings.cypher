// Record which model embedded which thumbnail of each image, and when (and clear an earlier
// embedding error). The vectors themselves live in the index sidecar, handed over through
// Redis (lookalike/vectors.py): the graph only says what exists, so the indexer can tell a
// vector that went missing. $rows: [{id, model, thumbnail, at}].
UNWIND $rows AS row
MATCH (i:Image {id: row.id})
SET i.embed_model = row.model, i.embedded_thumbnail = row.thumbnail, i.embedded_at = row.at
REMOVE i.embed_error, i.embed_failed_at
RETURN count(i) AS embedded
