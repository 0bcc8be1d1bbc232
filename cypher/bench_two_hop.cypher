// Benchmark baseline (bench/bench_graph.py): the ids within two SIMILAR_TO hops of $id, either
// direction, in one raw query. GraphStore.neighborhood() is timed against it in the same run.
MATCH (a:Image {id: $id})-[:SIMILAR_TO*1..2]-(b)
RETURN DISTINCT b.id AS id
