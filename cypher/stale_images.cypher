// Images fetched before $before (oldest first): continuous crawling re-fetches them.
MATCH (i:Image)
WHERE i.fetched_at < $before AND i.gone_at IS NULL
RETURN i.id AS id
ORDER BY i.fetched_at
LIMIT $limit
