// A thumbnail that could not be downloaded or decoded: record the reason on the node.
UNWIND $rows AS row
MATCH (i:Image {id: row.id})
SET i.hash_error = row.error, i.hash_failed_at = row.at
RETURN count(i) AS marked
