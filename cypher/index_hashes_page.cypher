// The index sidecar's full read: every hashed image, a page at a time in id order, with what
// the graph says of its embedding (which model, when, from which thumbnail, or why not) and
// what the audit compares (average colour; fetched: its similar list is known).
// $after: the last id of the previous page ("" for the first); $limit: the page size.
MATCH (i:Image)
WHERE i.id > $after AND i.hashed_at IS NOT NULL
RETURN i.id AS id, i.phash AS phash, i.dhash AS dhash, i.whash AS whash, i.ahash AS ahash,
       i.colorhash AS colorhash, i.hash_info AS hash_info, i.hash_color AS hash_color,
       i.hash_version AS hash_version, i.hashed_at AS hashed_at,
       i.hashed_thumbnail AS hashed_thumbnail, i.embed_model AS embed_model,
       i.embedded_at AS embedded_at, i.embed_error AS embed_error,
       i.average_color AS average_color, i.fetched_at IS NOT NULL AS fetched
ORDER BY i.id
LIMIT $limit
