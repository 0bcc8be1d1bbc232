// What the thumbnail step needs to decide whether an image must be (re)hashed or (re)embedded.
MATCH (i:Image {id: $id})
RETURN i.thumbnail_url AS thumbnail_url, i.hash_version AS hash_version,
       i.hashed_thumbnail AS hashed_thumbnail, i.phash AS phash,
       i.embed_model AS embed_model, i.embedded_thumbnail AS embedded_thumbnail
