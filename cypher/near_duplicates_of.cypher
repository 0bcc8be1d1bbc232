// The stored near-duplicates of one image (either direction), nearest first, with its group.
MATCH (i:Image {id: $id})
OPTIONAL MATCH (i)-[r:NEAR_DUPLICATE]-(o:Image)
RETURN i.dup_group AS group, o.id AS id, r.kind AS kind, r.distance AS distance,
       r.mirrored AS mirrored, r.weighted AS weighted, r.cosine AS cosine, r.local AS local,
       r.inliers AS inliers, r.local_score AS local_score,
       r.layout AS layout, r.local_color AS local_color
ORDER BY distance, id, kind
