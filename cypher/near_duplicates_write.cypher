// Verified near-duplicate pairs found by the index sidecar, one relationship per pair pointing
// from the smaller id. $rows: [{a, b, kind, distance, mirrored, weighted, distances, color,
// cosine, local, inliers, local_score, layout, local_color}]: kind/distance name the hash kind that agrees best;
// weighted is the weighted hash distance the verifier judged; distances maps every hash kind
// to its distance; color is the colour layout distance (null when either picture has no
// colour); cosine is the embedding cosine (null when either has no vector); local says
// whether the two pictures' pixels were compared (lookalike.localmatch), inliers and
// local_score what that found (null: no views, not compared); layout is the grey layouts'
// distance in grey levels (null: no views), what a plain pair is judged on; local_color how
// far apart the colours are where the two pictures align (null: not compared in colour). $run tags what this run wrote,
// so near_duplicates_prune can drop what it no longer finds.
UNWIND $rows AS row
MATCH (a:Image {id: row.a})
MATCH (b:Image {id: row.b})
MERGE (a)-[r:NEAR_DUPLICATE {verified: true}]->(b)
SET r.kind = row.kind, r.distance = row.distance, r.mirrored = row.mirrored,
    r.weighted = row.weighted, r.phash = row.distances.phash, r.dhash = row.distances.dhash,
    r.whash = row.distances.whash, r.ahash = row.distances.ahash,
    r.colorhash = row.distances.colorhash, r.color = row.color, r.cosine = row.cosine,
    r.local = row.local, r.inliers = row.inliers, r.local_score = row.local_score,
    r.layout = row.layout, r.local_color = row.local_color, r.run = $run
RETURN count(r) AS written
