// Store one fetched image: its properties (including fetched_at) and a clear of any earlier
// fetch error. Runs in the same transaction as store_neighbours/upsert_edges/prune_edges.
// Returns the node's hash state, so the crawler knows without another read whether the
// thumbnail must be hashed.
MERGE (i:Image {id: $id})
SET i += $props
REMOVE i.fetch_error, i.gone_at
RETURN i.id AS id, i.hash_version AS hash_version, i.hashed_thumbnail AS hashed_thumbnail,
       i.phash AS phash
