// The index sidecar's read of titles: every image with a title, a page at a time in id order.
// $after: the last id of the previous page ("" for the first); $limit: the page size.
MATCH (i:Image)
WHERE i.id > $after AND i.title IS NOT NULL
RETURN i.id AS id, i.title AS title
ORDER BY i.id
LIMIT $limit
