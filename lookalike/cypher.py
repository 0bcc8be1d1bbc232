"""Load Cypher statements by name from the project's ``cypher/`` folder.

Every statement the system runs lives in one ``cypher/<name>.cypher`` file, so users can read
the data model in one place and no Cypher string is built in Python. Statements take their
inputs only as parameters (``$name``). The folder is installed as the package
``lookalike_cypher`` (see pyproject.toml), so the statements travel with the code.
"""

from __future__ import annotations

from functools import cache
from typing import LiteralString

from lookalike.package_data import read_text

PACKAGE = "lookalike_cypher"


def _strip_comments(text: str) -> str:
    return "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("//")
    ).strip()


# LiteralString: the neo4j driver runs only those. A statement is a file shipped with the code,
# never built from input, so it is as trusted as a literal.
@cache
def load(name: str, suffix: str = ".cypher") -> LiteralString:
    """The statement in ``cypher/<name>.cypher``, comments removed. ``suffix=".sql"``: a file of
    the embedded ArcadeDB server's own SQL, for what Cypher cannot declare."""
    return _strip_comments(read_text(PACKAGE, name, suffix))


@cache
def load_many(name: str, suffix: str = ".cypher") -> tuple[LiteralString, ...]:
    """A file of several statements separated by ``;`` (used for the schema)."""
    return tuple(s.strip() for s in load(name, suffix).split(";") if s.strip())
