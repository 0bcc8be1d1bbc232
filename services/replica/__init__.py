"""A local replica of the Wellcome catalogue API (images) and its IIIF image server.

Building collections: ``builder`` (a folder of pictures), ``scale`` (synthetic, 100k+),
``build_key`` (when a build is skipped). Reading them: ``collection``. Serving them: ``app``
(the Flask app) with one blueprint per part, ``routes_catalogue``, ``routes_iiif``,
``routes_snapshot`` and ``routes_faults``, sharing a ``state.ReplicaState``; ``server``
(``run_replica``) runs it on a real socket. See README.md for the full map.
"""
