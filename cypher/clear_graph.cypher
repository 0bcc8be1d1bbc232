// Remove a batch of nodes with their relationships; GraphStore.clear() repeats it until empty.
// Batched because one huge DETACH DELETE is slow and memory-hungry on ArcadeDB.
MATCH (n)
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
