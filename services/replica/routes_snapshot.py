"""The catalogue's bulk snapshot (SPEC §8): every image as gzipped JSON lines, all source
fields, URLs on the replica's own base. Written once per base URL into the replica's
snapshot folder, then streamed from disk."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path

from flask import Blueprint, Response

from services.replica.documents import drop_nulls, with_base_url
from services.replica.routes_catalogue import CATALOGUE_PREFIX
from services.replica.state import ReplicaState, replica_state

SNAPSHOTS_PREFIX = f"{CATALOGUE_PREFIX}/snapshots"
SNAPSHOT_PATH = f"{SNAPSHOTS_PREFIX}/images.json.gz"

bp = Blueprint("snapshot", __name__)


@bp.get(SNAPSHOT_PATH)
def snapshot() -> Response:
    path = _snapshot_file(replica_state())
    return Response(
        _file_chunks(path),
        mimetype="application/gzip",
        headers={"Content-Length": str(path.stat().st_size)},
        direct_passthrough=True,
    )


def _snapshot_file(state: ReplicaState) -> Path:
    """Write (once per base URL) the gzipped JSON-lines snapshot of every image."""
    base = state.base_url()
    name = f"images-{abs(hash(base)) % 10**12}.json.gz"
    path = state.snapshot_dir / name
    with state.snapshot_lock:
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as f:
                for image_id in state.collection.ids:
                    doc = with_base_url(state.collection.record(image_id)["display"], base)
                    f.write(json.dumps(drop_nulls(doc), ensure_ascii=False) + "\n")
            os.replace(tmp, path)
    return path


def _file_chunks(path: Path, size: int = 1 << 16) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk
