// bench/bench_graph.py's upgrade: stores edges that already exist a second time, as concurrent
// writers could before SIMILAR_TO had its unique index. $rows: [{source, target, rank}].
UNWIND $rows AS row
MATCH (a:Image {id: row.source})
MATCH (b:Image {id: row.target})
CREATE (a)-[:SIMILAR_TO {rank: row.rank, first_seen: 2, last_seen: 2}]->(b)
