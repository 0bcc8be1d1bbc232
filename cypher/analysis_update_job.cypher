// Move a job along (running -> done | failed) and record what it found. $props holds only
// scalars and JSON text (summary): graph properties cannot be nested maps on Neo4j.
MATCH (a:Analysis {id: $id})
SET a += $props
RETURN a {.*} AS job
