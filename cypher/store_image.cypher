// Store one fetched image: its properties (including fetched_at) and a clear of any earlier
// fetch error. Runs in the same transaction as store_neighbours/upsert_edges/prune_edges.
MERGE (i:Image {id: $id})
SET i += $props
REMOVE i.fetch_error, i.gone_at
RETURN i.id AS id
