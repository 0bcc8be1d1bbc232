// Which of $ids have never been fetched (absent, or only known as someone's neighbour).
UNWIND $ids AS id
OPTIONAL MATCH (i:Image {id: id})
WITH id, i
WHERE i IS NULL OR i.fetched_at IS NULL
RETURN id
