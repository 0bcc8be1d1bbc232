// The images of one community from the latest whole-graph analysis, most central first.
MATCH (i:Image)
WHERE i.community = $community AND i.analysis_id = $analysis_id
RETURN i.id AS id, i.title AS title, i.pagerank AS pagerank, i.degree AS degree
ORDER BY i.pagerank DESC, i.id
LIMIT $limit
