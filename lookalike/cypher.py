"""Load Cypher statements by name from the project's ``cypher/`` folder.

Every statement the system runs lives in one ``cypher/<name>.cypher`` file, so users can read
the data model in one place and no Cypher string is built in Python. Statements take their
inputs only as parameters (``$name``).
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class CypherNotFound(LookupError):
    pass


def cypher_dir() -> Path:
    """The folder of .cypher files: ``LOOKALIKE_CYPHER_DIR`` or ``cypher/`` beside the package."""
    override = os.environ.get("LOOKALIKE_CYPHER_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "cypher"


def _strip_comments(text: str) -> str:
    return "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("//")
    ).strip()


@cache
def load(name: str) -> str:
    """The statement in ``cypher/<name>.cypher``, comments removed."""
    if not _NAME.match(name):
        raise CypherNotFound(f"{name!r} is not a statement name (lowercase, digits, _)")
    path = cypher_dir() / f"{name}.cypher"
    try:
        return _strip_comments(path.read_text())
    except FileNotFoundError as exc:
        raise CypherNotFound(f"no Cypher statement {name!r}: {path} does not exist") from exc


@cache
def load_many(name: str) -> tuple[str, ...]:
    """A file of several statements separated by ``;`` (used for the schema)."""
    return tuple(s.strip() for s in load(name).split(";") if s.strip())
