"""A hostile catalogue: a real HTTP server on 127.0.0.1 in front of a replica.

It serves the replica's catalogue API and pictures through itself (its own address in every
URL), except for the images it is told to be hostile about: for those it sends the bodies a
hostile-input review found stalling crawls or exhausting memory.

- ``nested_json``: the image's record is ``{"a":`` two hundred thousand times (the standard
  JSON parser recurses once per level);
- ``gzip_bomb_json``: the record, gzip-compressed, expands to 50 MB of one JSON string;
- ``trickle_json`` / ``trickle_thumbnail``: the real record or thumbnail, with its true
  Content-Length, sent one byte every ``TRICKLE_S`` seconds (no read ever times out).
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import Counter
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from services.replica.server import ReplicaHandle

KINDS = ("nested_json", "gzip_bomb_json", "trickle_json", "trickle_thumbnail")
THUMBNAIL_KINDS = frozenset({"trickle_thumbnail"})  # the others are about the record
TRICKLE_S = 0.25
TRICKLE_GIVE_UP_S = 120.0  # a trickling answer ends by itself after this, so no thread lingers


@cache
def gzip_bomb() -> bytes:
    """~50 KB of gzip that expands to a 50 MB JSON document."""
    return gzip.compress(b'{"id": "' + b" " * 50_000_000 + b'"}', compresslevel=9)


def nested_json() -> bytes:
    return b'{"a":' * 200_000


class HostileCatalogue:
    def __init__(self, replica: ReplicaHandle) -> None:
        self.replica = replica
        self.upstream = replica.base_url
        self.hostile: dict[str, str] = {}  # image id -> kind
        self.hits: Counter[tuple[str, str]] = Counter()  # (kind, image id) -> requests
        self._lock = threading.Lock()
        self._http = requests.Session()
        catalogue = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                catalogue._answer(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients hanging up on a hostile answer is the point

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    # -- configuration -------------------------------------------------------------------

    def make_hostile(self, image_id: str, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown hostility {kind!r}; one of {KINDS}")
        with self._lock:
            self.hostile[image_id] = kind

    def env(self) -> dict[str, str]:
        """The crawler's settings for this catalogue."""
        return {
            "LOOKALIKE_CATALOGUE_URL": f"{self.base_url}/catalogue/v2",
            "LOOKALIKE_IMAGE_HOSTS": self.base_url.split("://", 1)[1],
        }

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- answers -------------------------------------------------------------------------

    def _image_of(self, path: str) -> tuple[str | None, str]:
        """(image id, "record" or "thumbnail") of a request path, when it is about one."""
        parts = path.split("?", 1)[0].split("/")
        if path.startswith("/catalogue/v2/images/") and len(parts) == 5:
            return parts[4], "record"
        if (
            parts[1:2] in (["image"], ["thumbs"])
            and len(parts) > 3
            and not parts[-1].endswith(".json")
        ):
            return self.replica.collection.image_for_asset(parts[2]), "thumbnail"
        return None, ""

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        image_id, what = self._image_of(handler.path)
        with self._lock:
            kind = self.hostile.get(image_id or "")
        if kind and what and (what == "thumbnail") == (kind in THUMBNAIL_KINDS):
            with self._lock:
                self.hits[(kind, image_id or "")] += 1
            if kind == "nested_json":
                return _send(handler, 200, nested_json(), {"Content-Type": "application/json"})
            if kind == "gzip_bomb_json":
                return _send(
                    handler,
                    200,
                    gzip_bomb(),
                    {"Content-Type": "application/json", "Content-Encoding": "gzip"},
                )
            status, body, headers = self._upstream(handler.path)
            return _trickle(handler, status, body, headers)
        status, body, headers = self._upstream(handler.path)
        _send(handler, status, body, headers)

    def _upstream(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        """The replica's answer, with the replica's address replaced by ours."""
        resp = self._http.get(self.upstream + path, timeout=60)
        headers = {
            k: v
            for k, v in resp.headers.items()
            if k.lower() in ("content-type", "retry-after", "location")
        }
        body = resp.content
        ctype = resp.headers.get("Content-Type", "")
        if "json" in ctype or ctype.startswith("text/"):
            body = body.replace(self.upstream.encode(), self.base_url.encode())
        if "Location" in headers:
            headers["Location"] = headers["Location"].replace(self.upstream, self.base_url)
        return resp.status_code, body, headers


def _head(
    handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], length: int
) -> None:
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(length))
    handler.end_headers()


def _send(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
) -> None:
    try:
        _head(handler, status, headers, len(body))
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True


def _trickle(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
) -> None:
    """The answer with its true length, one byte at a time: never a pause long enough for a
    read timeout, and never done in any reasonable time."""
    handler.close_connection = True
    try:
        _head(handler, status, headers, len(body))
        handler.wfile.flush()
        started = time.monotonic()
        for i in range(len(body)):
            if time.monotonic() - started > TRICKLE_GIVE_UP_S:
                return
            handler.wfile.write(body[i : i + 1])
            handler.wfile.flush()
            time.sleep(TRICKLE_S)
    except OSError:  # the client hung up: what the trickle is for
        return
