"""The near-duplicate index sidecar (see README.md in this folder).

Pure core: bits (hash arithmetic, mirror hashes), multindex (exact small-radius search),
table (hash columns from graph rows), build + generations (write and publish an index
generation atomically), duplicates (pairs and groups), reader (queries). I/O edges:
graph_io (the graph), service (the rebuild loop), npmap (mapping files).
"""
