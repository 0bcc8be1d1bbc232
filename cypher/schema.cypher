// The graph's schema. Run by GraphStore.ensure_schema(); every statement is idempotent.
// (:Image {id}) is keyed by the catalogue's own id: element ids are never persisted.
CREATE CONSTRAINT image_id IF NOT EXISTS FOR (i:Image) REQUIRE i.id IS UNIQUE;
// Continuous crawling finds stale images by fetched_at; the index sidecar reads new hashes by hashed_at.
CREATE INDEX image_fetched_at IF NOT EXISTS FOR (i:Image) ON (i.fetched_at);
CREATE INDEX image_hashed_at IF NOT EXISTS FOR (i:Image) ON (i.hashed_at);
CREATE INDEX image_dup_group IF NOT EXISTS FOR (i:Image) ON (i.dup_group);
CREATE CONSTRAINT crawl_id IF NOT EXISTS FOR (c:Crawl) REQUIRE c.id IS UNIQUE;
// Whole-graph analysis jobs, and images looked up by the community they were assigned.
CREATE CONSTRAINT analysis_id IF NOT EXISTS FOR (a:Analysis) REQUIRE a.id IS UNIQUE;
CREATE INDEX image_community IF NOT EXISTS FOR (i:Image) ON (i.community)
