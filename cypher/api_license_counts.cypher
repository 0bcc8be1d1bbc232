// How many images carry each licence (null: not known yet), most common first.
MATCH (i:Image)
RETURN i.license AS license, count(*) AS images
ORDER BY images DESC, license
LIMIT $limit
