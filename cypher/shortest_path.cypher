// The shortest chain of similar images between two images, ignoring edge direction.
// The upper bound is a literal because Cypher cannot take it as a parameter; callers ask
// for at most $max_hops and the bound below is the hard ceiling (settings cannot exceed it).
MATCH (a:Image {id: $source}), (b:Image {id: $target})
MATCH p = shortestPath((a)-[:SIMILAR_TO*..12]-(b))
WHERE length(p) <= $max_hops
RETURN [n IN nodes(p) | n.id] AS ids,
       [r IN relationships(p) | {source: startNode(r).id, target: endNode(r).id, rank: r.rank}] AS edges
