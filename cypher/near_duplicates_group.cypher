// The members of one near-duplicate group, by id.
MATCH (i:Image)
WHERE i.dup_group = $group
RETURN i.id AS id, i.title AS title, i.thumbnail_url AS thumbnail_url
ORDER BY id
