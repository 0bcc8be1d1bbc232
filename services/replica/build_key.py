"""When a collection build can be skipped, and when its output directory may be replaced.

Every builder (``builder`` for folders of pictures, ``scale`` for synthetic catalogues) writes
the key of its inputs and options into ``manifest.json``; a later build with the same key
into the same directory does nothing, so tests and the CLI can call builders freely. A
directory that holds something other than a collection is never overwritten.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from services.replica.collection import CollectionError


def build_key(parts: dict[str, Any]) -> str:
    """A short digest of everything a build depends on (its code's version included)."""
    payload = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def existing_key(out_dir: Path) -> str | None:
    """The key of the build ``out_dir`` holds, or None."""
    try:
        return json.loads((out_dir / "manifest.json").read_text()).get("build_key")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a non-empty directory that is not a collection."""
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "manifest.json").exists():
        raise CollectionError(
            f"{out_dir} is not empty and is not a replica collection; refusing to overwrite it"
        )
