// The most recent analysis jobs, newest first.
MATCH (a:Analysis)
RETURN a {.*} AS job
ORDER BY a.created_at DESC, a.id DESC
LIMIT $limit
