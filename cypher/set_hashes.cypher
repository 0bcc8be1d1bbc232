// Store the perceptual hashes of images' thumbnails (and clear an earlier hash error).
UNWIND $rows AS row
MATCH (i:Image {id: row.id})
SET i.phash = row.phash, i.dhash = row.dhash, i.whash = row.whash, i.ahash = row.ahash,
    i.colorhash = row.colorhash, i.hash_version = row.hash_version,
    i.hashed_thumbnail = row.thumbnail, i.hashed_at = row.hashed_at
REMOVE i.hash_error
RETURN count(i) AS hashed
