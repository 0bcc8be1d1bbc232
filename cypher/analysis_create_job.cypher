// Record a whole-graph analysis job before it is queued, so it can be read back at once.
// MERGE on the id: creating the same job twice is harmless.
MERGE (a:Analysis {id: $id})
ON CREATE SET a.status = 'queued', a.created_at = $now, a.params = $params
RETURN a {.*} AS job
