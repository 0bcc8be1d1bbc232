// Store fetched images: their properties (including fetched_at) and a clear of any earlier
// fetch error. Runs in the same transaction as store_neighbours/upsert_edges/prune_edges
// (and set_hashes), for one image or a batch of them.
// Returns each node's hash and embedding state, so the crawler knows without another read
// whether the thumbnail must be hashed or embedded.
UNWIND $rows AS row
MERGE (i:Image {id: row.id})
SET i += row.props
REMOVE i.fetch_error, i.gone_at
RETURN i.id AS id, i.hash_version AS hash_version, i.hashed_thumbnail AS hashed_thumbnail,
       i.phash AS phash, i.embed_model AS embed_model, i.embedded_thumbnail AS embedded_thumbnail
