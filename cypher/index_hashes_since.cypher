// Images hashed at or after $since (epoch ms): what the index reader scans exactly because
// the published index generation does not have them yet. Uses the image_hashed_at index.
MATCH (i:Image)
WHERE i.hashed_at >= $since
RETURN i.id AS id, i.phash AS phash, i.dhash AS dhash, i.whash AS whash, i.ahash AS ahash,
       i.colorhash AS colorhash, i.hash_info AS hash_info, i.hash_color AS hash_color,
       i.hash_version AS hash_version, i.hashed_at AS hashed_at
ORDER BY i.hashed_at, i.id
LIMIT $limit
