// Write a whole-graph analysis back onto the images: Leiden community (index into the
// size-ordered list, 0 = largest), PageRank, undirected degree, and which job computed them.
UNWIND $rows AS row
MATCH (i:Image {id: row.id})
SET i.community = row.community, i.pagerank = row.pagerank, i.degree = row.degree,
    i.analysis_id = $analysis_id
RETURN count(i) AS images
