// Several images' properties by id (missing ids are simply absent from the result).
UNWIND $ids AS id
MATCH (i:Image {id: id})
RETURN i {.*} AS image
