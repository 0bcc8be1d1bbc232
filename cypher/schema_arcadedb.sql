// The embedded ArcadeDB server's own schema, in its SQL because Cypher cannot declare it.
// GraphStore.ensure_schema sends it through the server's HTTP API after schema.cypher, only
// on the embedded server; every statement is idempotent.
//
// Two transactions that MERGE the same relationship at once can both create it on ArcadeDB
// (Neo4j locks the two nodes instead; writing to the source node as well does not stop it).
// With a unique index on the edge's two ends the second commit fails with a ConstraintError,
// which GraphStore retries, and the retried MERGE finds the edge. Crawl workers write
// SIMILAR_TO at once; the other relationships have one writer, the index sidecar.
CREATE EDGE TYPE SIMILAR_TO IF NOT EXISTS;
CREATE INDEX IF NOT EXISTS ON SIMILAR_TO (`@out`, `@in`) UNIQUE
