"""Bulk snapshots: JSON lines, gzipped or not, from a URL on an allowed host or a local
file; a bad line is skipped and reported, a truncated file ends the read with an error."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import requests
import urllib3

from lookalike import safe_json
from lookalike.catalogue.failures import describe_json_error
from lookalike.catalogue.fetch import Fetcher, Source
from lookalike.catalogue.limits import MAX_SNAPSHOT_LINE_BYTES
from lookalike.catalogue.stats import ClientStats
from lookalike.errors import CatalogueError, RecordError
from lookalike.records import ImageRecord, parse_image

# The real snapshot is served from a sibling host of the API (SPEC §8).
WELLCOME_SNAPSHOT_HOSTS = ("data.wellcomecollection.org",)

OnError = Callable[[CatalogueError], None] | None


def snapshot_source(allowed: tuple[str, ...]) -> Source:
    """Snapshots, from the ``allowed`` hosts."""
    return Source("snapshot", allowed, "application/gzip,application/x-ndjson,*/*;q=0.5")


def iter_snapshot(
    fetcher: Fetcher,
    source: str | os.PathLike[str],
    allowed: tuple[str, ...],
    on_error: OnError,
) -> Iterator[ImageRecord]:
    """Every image of the snapshot at ``source`` (a URL on ``allowed`` hosts, or a path)."""
    text = os.fspath(source)
    if text.startswith(("http://", "https://")) or "://" in text:
        resp = fetcher.fetch(
            snapshot_source(allowed), text, None, lambda resp, final: resp, keep_open=True
        )
        with closing(resp):
            resp.raw.decode_content = True  # undo transport encoding, keep the .gz itself
            resp.raw.auto_close = False  # reading past the end must see EOF, not "closed"
            yield from read_records(resp.raw, resp.url, fetcher.stats, on_error)
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"snapshot file {path} does not exist or is not a file")
        with path.open("rb") as fh:
            yield from read_records(fh, str(path), fetcher.stats, on_error)


def read_records(
    raw: io.BufferedReader | urllib3.BaseHTTPResponse,
    name: str,
    stats: ClientStats,
    on_error: OnError,
) -> Iterator[ImageRecord]:
    """The records of a snapshot stream called ``name`` (a file, or the raw response);
    bad lines go to ``on_error``."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    stream: io.BufferedIOBase = buffered
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=buffered, mode="rb")
    lineno = 0
    count = 0
    try:
        while True:
            line = stream.readline(MAX_SNAPSHOT_LINE_BYTES + 1)
            if not line:
                break
            lineno += 1
            if len(line) > MAX_SNAPSHOT_LINE_BYTES and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):  # skip the rest of it
                    line = stream.readline(MAX_SNAPSHOT_LINE_BYTES)
                stats.bad_item(
                    CatalogueError(
                        "response_too_large",
                        f"{name} line {lineno} is longer than {MAX_SNAPSHOT_LINE_BYTES} "
                        "bytes; skipped it",
                        url=name,
                    ),
                    on_error,
                )
                continue
            if not line.strip():
                continue
            try:
                doc = safe_json.loads(line)
            except ValueError as exc:
                stats.bad_item(
                    CatalogueError(
                        "malformed_json",
                        f"{name} line {lineno} is not valid JSON: {describe_json_error(line, exc)}",
                        url=name,
                        retryable=False,
                    ),
                    on_error,
                )
                continue
            try:
                record = parse_image(doc)
            except RecordError as exc:
                stats.bad_item(
                    RecordError(exc.path, exc.problem, url=name, where=f"{name} line {lineno}"),
                    on_error,
                )
                continue
            count += 1
            yield record
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise CatalogueError(
            "malformed_json",
            f"snapshot {name} is truncated or corrupt after line {lineno} ({count} records "
            f"read): {exc}. Download it again.",
            url=name,
        ) from exc
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise CatalogueError(
            "unavailable",
            f"reading snapshot {name} failed after line {lineno} ({count} records read): "
            f"{exc.__class__.__name__}: {exc}",
            url=name,
        ) from exc
