// How many images were fetched after $since (epoch ms): their titles may be new or changed,
// so the indexer rebuilds the title index when enough are.
MATCH (i:Image)
WHERE i.fetched_at > $since
RETURN count(i) AS new
