"""Read the text files shipped inside the installed packages, by name: the Cypher statements
(the ``cypher/`` folder, installed as the package ``lookalike_cypher``) and the Lua scripts
Redis runs (``lookalike/lua/``, ``workers/lua/``).

Read through ``importlib.resources``, so they are found wherever the packages are installed
(a wheel, ``pip install .``, an editable checkout) without a path setting.
"""

from __future__ import annotations

import re
from importlib.resources import files

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class NotShipped(LookupError):
    """No such file in the package, or a name that cannot be one."""


def read_text(package: str, name: str, suffix: str, folder: str = "") -> str:
    """The text of ``<package>/<folder>/<name><suffix>``."""
    if not _NAME.match(name):
        raise NotShipped(f"{name!r} is not a file name (lowercase, digits, _)")
    where = files(package)
    if folder:
        where = where.joinpath(folder)
    resource = where.joinpath(f"{name}{suffix}")
    try:
        return resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotShipped(
            f"no {suffix} file {name!r} in {package}: {resource} does not exist"
        ) from exc
