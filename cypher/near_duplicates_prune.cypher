// Remove up to $limit NEAR_DUPLICATE relationships that the run $run did not write
// (pairs no longer within the threshold, re-hashed images, changed thresholds).
MATCH ()-[r:NEAR_DUPLICATE]->()
WHERE r.run IS NULL OR r.run <> $run
WITH r LIMIT $limit
DELETE r
RETURN count(*) AS removed
