// Create or update images from catalogue records. $rows: [{id, props: {title, source_id,
// thumbnail_url, license, aspect_ratio, average_color, fetched_at?}}].
// SET += only touches the keys given, so hashes and crawl marks already stored survive.
UNWIND $rows AS row
MERGE (i:Image {id: row.id})
SET i += row.props
RETURN count(i) AS images
