// How many images a whole-graph analysis will read: the total of its progress.
MATCH (i:Image)
RETURN count(i) AS images
