"""The Lua scripts Redis runs, read from the ``lua/`` folder of the package that runs them.

Each script is one ``<package>/lua/<name>.lua`` file, shipped as package data. Redis runs one
source text per script, so a script that calls a function shared with others is the function's
file followed by its own.
"""

from __future__ import annotations

from lookalike.package_data import read_text


def source(package: str, *names: str) -> str:
    """The files ``<package>/lua/<name>.lua`` of ``names``, joined in order."""
    return "\n".join(read_text(package, name, ".lua", folder="lua") for name in names)
