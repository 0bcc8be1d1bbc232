// One analysis job by id.
MATCH (a:Analysis {id: $id})
RETURN a {.*} AS job
