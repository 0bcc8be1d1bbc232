// After a full write: remove up to $limit LOOKS_LIKE relationships the run $run did not write
// (another model, another k, images gone).
MATCH ()-[r:LOOKS_LIKE]->()
WHERE r.run IS NULL OR r.run <> $run
WITH r LIMIT $limit
DELETE r
RETURN count(*) AS removed
