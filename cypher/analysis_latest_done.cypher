// The newest finished whole-graph analysis: the one whose scores are on the images.
MATCH (a:Analysis)
WHERE a.status = 'done'
RETURN a {.*} AS job
ORDER BY a.finished_at DESC, a.id DESC
LIMIT 1
