// How many images were hashed after $since (epoch ms): the indexer rebuilds when enough are.
MATCH (i:Image)
WHERE i.hashed_at > $since
RETURN count(i) AS new
