// Clear up to $limit group marks that the run $run did not set (images no longer in a group).
MATCH (i:Image)
WHERE i.dup_group IS NOT NULL AND (i.dup_run IS NULL OR i.dup_run <> $run)
WITH i LIMIT $limit
REMOVE i.dup_group, i.dup_group_size, i.dup_run
RETURN count(i) AS cleared
