// An image whose catalogue record could not be fetched or parsed: record why, keep the rest.
MERGE (i:Image {id: $id})
SET i.fetch_error = $error, i.fetch_failed_at = $at
RETURN i.id AS id
