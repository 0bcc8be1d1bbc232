"""A local replica of the Wellcome catalogue API (images) and its IIIF image server.

Modules: ``builder``/``scale`` write collections, ``collection`` reads them, ``app`` serves
them (``documents``, ``listing``, ``iiif``, ``errors`` shape the answers), ``faults`` breaks
them on purpose, ``server.run_replica`` runs them on a real socket. See README.md.
"""
