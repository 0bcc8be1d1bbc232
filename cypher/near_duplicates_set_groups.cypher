// Mark each image with its near-duplicate group. $rows: [{id, group, size}]; the group id is
// the smallest image id in the group, so it is stable while the group keeps that member.
UNWIND $rows AS row
MATCH (i:Image {id: row.id})
SET i.dup_group = row.group, i.dup_group_size = row.size, i.dup_run = $run
RETURN count(i) AS images
