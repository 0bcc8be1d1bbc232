// Store the perceptual hashes of images' thumbnails (and clear an earlier hash error), with
// what the near-duplicate verifier needs besides: hash_info (the picture's detail; near-
// uniform pictures are never called copies) and hash_color (its colour layout, hex).
UNWIND $rows AS row
MATCH (i:Image {id: row.id})
SET i.phash = row.phash, i.dhash = row.dhash, i.whash = row.whash, i.ahash = row.ahash,
    i.colorhash = row.colorhash, i.hash_info = row.hash_info, i.hash_color = row.hash_color,
    i.hash_version = row.hash_version,
    i.hashed_thumbnail = row.thumbnail, i.hashed_at = row.hashed_at
REMOVE i.hash_error
RETURN count(i) AS hashed
