"""Every Cypher statement the system runs, one ``<name>.cypher`` file each.

This folder is installed as the package ``lookalike_cypher`` (pyproject.toml maps it), so the
statements ship inside the wheel; ``lookalike.cypher.load(name)`` reads them.
"""
