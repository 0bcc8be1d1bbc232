// Near-duplicate groups found by the indexer (images sharing a dup_group), largest first.
MATCH (i:Image)
WHERE i.dup_group IS NOT NULL
WITH i.dup_group AS dup_group, i ORDER BY i.id
WITH dup_group, collect({id: i.id, title: i.title}) AS members
WHERE size(members) > 1
RETURN dup_group, members, size(members) AS size
ORDER BY size DESC, dup_group
LIMIT $limit
