// The catalogue no longer has this image (404 on re-fetch): keep the node and its history,
// mark it gone, and drop the similar-image edges it used to list.
MATCH (i:Image {id: $id})
SET i.gone_at = $at, i.fetch_error = $error
WITH i
OPTIONAL MATCH (i)-[r:SIMILAR_TO]->()
DELETE r
RETURN count(r) AS removed
