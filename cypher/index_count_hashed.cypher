// How many images have hashes at all: a drop means images were deleted since the last build.
MATCH (i:Image)
WHERE i.hashed_at IS NOT NULL
RETURN count(i) AS hashed
