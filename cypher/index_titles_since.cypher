// Titles the published title index may not have: images fetched, or hashed, at or after
// $since (epoch ms). Images the crawler stores without fetching them (listed by another
// image) are hashed soon after, so the two together cover every newly stored title. Each
// part uses its own index (image_fetched_at, image_hashed_at); UNION removes images in both.
MATCH (i:Image)
WHERE i.fetched_at >= $since
RETURN i.id AS id, i.title AS title
LIMIT $limit
UNION
MATCH (i:Image)
WHERE i.hashed_at >= $since
RETURN i.id AS id, i.title AS title
LIMIT $limit
