"""Size limits on what the catalogue sends: bodies are read up to a byte limit and no further.

The limit counts bytes after decompression, so a gzip bomb stops as soon as it expands past
it; a Content-Length over the limit stops before the body is read at all. The request's
deadline (``deadline.py``) bounds the time.
"""

from __future__ import annotations

import requests

from lookalike.catalogue.failures import Transient
from lookalike.errors import CatalogueError

MAX_JSON_BYTES = 20_000_000
MAX_SNAPSHOT_LINE_BYTES = 10_000_000
MAX_ERROR_BODY_BYTES = 65536


def read_body(
    resp: requests.Response, url: str, limit: int, too_large: str, limit_name: str
) -> bytes:
    """Read at most ``limit`` bytes (after decompression); raise ``too_large`` beyond it,
    naming the limit (``limit_name``)."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise CatalogueError(
            too_large,
            f"{url} is {int(declared)} bytes (Content-Length), over the limit of {limit} "
            f"({limit_name}); not downloading it",
            url=url,
        )
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in resp.iter_content(chunk_size=16384):  # small: bounds gzip expansion
            size += len(chunk)
            if size > limit:
                encoding = resp.headers.get("Content-Encoding", "")
                packed = (
                    f", decompressed from its {encoding} transfer encoding: a compression "
                    "bomb, or a body far larger than its kind ever is"
                    if encoding and encoding != "identity"
                    else ""
                )
                raise CatalogueError(
                    too_large,
                    f"{url} sent more than {limit} bytes{packed}; stopped reading (limit "
                    f"{limit_name})",
                    url=url,
                )
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise Transient(
            CatalogueError(
                "unavailable",
                f"the connection broke while reading the body of {url} after {size} bytes "
                f"({exc.__class__.__name__}: {exc})",
                url=url,
            ),
            "connection_errors",
        ) from exc
    return b"".join(chunks)
