// One image with every stored property, and how many similar images it lists / is listed by.
MATCH (i:Image {id: $id})
OPTIONAL MATCH (i)-[o:SIMILAR_TO]->()
WITH i, count(o) AS out_degree
OPTIONAL MATCH (i)<-[n:SIMILAR_TO]-()
RETURN i {.*} AS image, out_degree, count(n) AS in_degree
