// A thumbnail the model could not embed: record the reason on the node, and forget the model
// of an earlier embedding (its vector was of an older thumbnail), so nothing calls it current.
// $rows: [{id, error, at}].
UNWIND $rows AS row
MATCH (i:Image {id: row.id})
SET i.embed_error = row.error, i.embed_failed_at = row.at
REMOVE i.embed_model, i.embedded_thumbnail, i.embedded_at
RETURN count(i) AS marked
