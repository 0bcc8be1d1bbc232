"""The replica's Flask app: catalogue API v2 images endpoints, IIIF image server, faults.

Routes (paths as on the real hosts, both on one server):

- ``GET /catalogue/v2/images/{id}`` and ``GET /catalogue/v2/images`` (SPEC §3-4)
- ``GET /catalogue/v2/snapshots/images.json.gz`` (the daily bulk snapshot, SPEC §8)
- ``GET /image/{asset}/info.json`` and ``/image/{asset}/{region}/{size}/{rot}/{q}.{fmt}``
  (IIIF Image API 2; ``/thumbs/...`` is the same fast-thumbnail service)
- ``GET /management/healthcheck``; ``GET /_replica/stats``, ``POST /_replica/reset``
- anything else: the catalogue's 404 ``Page not found for URL …``

Faults (see ``faults``) are applied in one before-request hook for the transient kinds and
inside the handlers for the per-image permanent ones.

Pictures come from a small in-memory cache, then (with ``derivatives_dir``) the derivative
cache on disk (``derivatives``: pre-rendered or stored at first request, as the real image
service serves thumbnails made at ingest), and only then are drawn and encoded. Permanent
thumbnail faults are applied to those bytes afterwards, whichever cache they came from.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from services.replica import iiif
from services.replica.collection import Collection
from services.replica.derivatives import DEFAULT_MAX_MB, DerivativeCache, collection_namespace
from services.replica.documents import (
    ID_PATTERN,
    LEGACY_SINGLE_INCLUDES,
    SINGLE_INCLUDES,
    drop_nulls,
    parse_csv,
    trim,
    with_base_url,
)
from services.replica.errors import (
    DECOMMISSIONED_MESSAGE,
    TIMEOUT_MESSAGE,
    CatalogueError,
    error_response,
    not_valid_values,
)
from services.replica.faults import FaultConfig, FaultPlan, FaultSpecError, Stats, request_key
from services.replica.listing import ListQuery, run_list_query

CATALOGUE_PREFIX = "/catalogue/v2"
SNAPSHOT_PATH = f"{CATALOGUE_PREFIX}/snapshots/images.json.gz"


@dataclass
class ReplicaState:
    collection: Collection
    legacy: bool = False
    plan: FaultPlan = field(default_factory=FaultPlan)
    stats: Stats = field(default_factory=Stats)
    public_base: str | None = None
    snapshot_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="replica-")))
    snapshot_lock: threading.Lock = field(default_factory=threading.Lock)
    renders: RenderCache = field(default_factory=lambda: RenderCache(512))
    derivatives: DerivativeCache | None = None
    _rendered: int = 0
    _count_lock: threading.Lock = field(default_factory=threading.Lock)

    def base_url(self) -> str:
        return self.public_base or request.host_url.rstrip("/")

    def picture_bytes(self, key: tuple, source, req: iiif.ImageRequest) -> bytes:
        """The encoded picture of a parsed request, without faults: memory, disk, render."""
        def from_disk_or_render() -> bytes:
            if self.derivatives is not None:
                data = self.derivatives.get(key)
                if data is not None:
                    return data
            data = iiif.render(source, req)
            with self._count_lock:
                self._rendered += 1
            if self.derivatives is not None:
                self.derivatives.put(key, data)
            return data

        return self.renders.get_or_render(key, from_disk_or_render)

    def picture_counts(self) -> dict:
        """Where the served pictures came from (since the last reset)."""
        disk = self.derivatives.counts() if self.derivatives is not None else {}
        with self._count_lock:
            rendered = self._rendered
        return {
            "memory_hits": self.renders.hits,
            "derivative_hits": disk.get("hits", 0),
            "rendered": rendered,
            "stored": disk.get("stored", 0),
            "not_stored_full": disk.get("full", 0),
            "store_errors": disk.get("error", 0),
            "derivatives_dir": str(self.derivatives.directory) if self.derivatives else None,
            "derivatives_mb": round(self.derivatives.usage_bytes / 2**20, 2)
            if self.derivatives else None,
        }

    def snapshot(self, *, timestamps: bool = False, paths: bool = False) -> dict:
        return {**self.stats.snapshot(timestamps=timestamps, paths=paths),
                "pictures": self.picture_counts()}

    def reset(self) -> None:
        self.stats.reset()
        self.plan.reset()
        self.renders.reset_counts()
        if self.derivatives is not None:
            self.derivatives.reset_counts()
        with self._count_lock:
            self._rendered = 0


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    mimetype="application/json")


def _area(path: str) -> str:
    if path.startswith("/image/") or path.startswith("/thumbs/"):
        return "iiif"
    if path.startswith(f"{CATALOGUE_PREFIX}/images"):
        return "catalogue"
    if path.startswith(f"{CATALOGUE_PREFIX}/snapshots"):
        return "snapshot"
    return "other"


_DROP = "replica.drop_connection"


class _DropConnections:
    """WSGI middleware: when a request is marked for a dropped connection, shut the socket
    instead of starting the response. Done outside Flask so no error page is rendered or
    logged; the werkzeug server treats the ConnectionAbortedError as a client gone away."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        def guarded(status, headers, exc_info=None):
            if environ.get(_DROP):
                sock = environ.get("werkzeug.socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                raise ConnectionAbortedError("replica fault: dropped connection")
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, guarded)


def _transient_fault_response(state: ReplicaState, area: str, config: FaultConfig,
                              key: str, attempt: int) -> Response | None:
    kind = state.plan.transient_for(config, key, attempt)
    if kind is None:
        return None
    state.stats.fault(kind)
    if kind == "slow":
        time.sleep(config.slow_s)
        return None
    if kind == "truncated":
        g.truncate = True
        return None
    if kind == "drop":
        request.environ[_DROP] = True
        return Response(b"", 500)
    if kind == "429":
        retry = f"{config.retry_after:g}"
        if area == "iiif":
            return Response("Too Many Requests", 429, {"Retry-After": retry},
                            mimetype="text/plain")
        return error_response(429, "Too Many Requests", {"Retry-After": retry})
    status = FaultPlan.status_for(config, key, attempt)
    state.stats.fault(f"5xx:{status}")
    if area == "iiif":
        return Response(f"{status} error", status, mimetype="text/plain")
    description = TIMEOUT_MESSAGE if status == 503 else None
    return error_response(status, description)


def create_app(
    collection: Collection,
    *,
    legacy: bool = False,
    faults: FaultConfig | None = None,
    public_base: str | None = None,
    derivatives_dir: str | os.PathLike | None = None,
    derivatives_mb: float = DEFAULT_MAX_MB,
) -> Flask:
    """The replica app over ``collection``; ``public_base`` fixes the URLs it writes.

    ``derivatives_dir``: keep encoded pictures on disk there (``derivatives``), at most
    ``derivatives_mb`` MiB; a directory that cannot be used raises ``DerivativeCacheError``
    here, before anything is served.
    """
    derivatives = None
    if derivatives_dir is not None:
        derivatives = DerivativeCache(derivatives_dir, namespace=collection_namespace(collection),
                                      max_mb=derivatives_mb)
    app = Flask("lookalike-replica")
    app.json.sort_keys = False
    app.wsgi_app = _DropConnections(app.wsgi_app)
    state = ReplicaState(collection, legacy, FaultPlan(faults), public_base=public_base,
                         derivatives=derivatives)
    app.extensions["replica"] = state

    def request_config() -> FaultConfig:
        override = request.args.get("faults")
        if override is None:
            return state.plan.config
        return FaultConfig.parse(override)

    @app.before_request
    def count_and_fault():
        area = _area(request.path)
        g.area = area
        if area == "other":
            return None
        state.stats.request(area, request.path)
        try:
            config = request_config()
        except FaultSpecError as exc:
            return error_response(400, f"faults: {exc}")
        g.fault_config = config
        if not config.active:
            return None
        key = request_key(request.path, list(request.args.items(multi=True)))
        attempt = state.plan.next_attempt(key)
        return _transient_fault_response(state, area, config, key, attempt)

    @app.after_request
    def finish(response: Response) -> Response:
        area = g.get("area", "other")
        if area != "other" and not request.environ.get(_DROP):
            state.stats.status(area, response.status_code)
        if g.get("truncate") and not response.direct_passthrough:
            body = response.get_data()
            response.set_data(body[: max(1, len(body) // 2)])
        return response

    @app.errorhandler(CatalogueError)
    def catalogue_error(exc: CatalogueError):
        return error_response(exc.status, exc.description)

    @app.errorhandler(iiif.IIIFError)
    def iiif_error(exc: iiif.IIIFError):
        return Response(str(exc), exc.status, mimetype="text/plain")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if g.get("area") == "iiif":
            return Response(exc.description or exc.name, exc.code or 500, mimetype="text/plain")
        if exc.code == 404:
            return error_response(404, f"Page not found for URL {request.path}")
        allow = dict(exc.get_headers()).get("Allow")
        return error_response(exc.code or 500, exc.description,
                              {"Allow": allow} if allow else None)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("replica error")
        return error_response(500)

    # -- catalogue ---------------------------------------------------------------------------

    @app.get(f"{CATALOGUE_PREFIX}/images/<path:image_id>")
    def get_image(image_id: str):
        image_id = image_id.rstrip("/")
        if not ID_PATTERN.match(image_id):
            raise CatalogueError(404, f"Image not found for identifier {image_id}")
        includes = _single_includes(request.args.get("include"), state.legacy)
        config = g.get("fault_config") or state.plan.config
        if image_id not in collection:
            raise CatalogueError(404, f"Image not found for identifier {image_id}")
        json_fault = state.plan.json_fault(image_id, config)
        if json_fault == "missing":
            state.stats.fault("missing")
            raise CatalogueError(404, f"Image not found for identifier {image_id}")
        base = state.base_url()
        doc = trim(with_base_url(collection.record(image_id)["display"], base), includes)
        if "withSimilarFeatures" in includes or "visuallySimilar" in includes:
            similar = [
                trim(with_base_url(collection.record(s)["display"], base), includes)
                for s in collection.similar_ids(image_id)
            ]
            if "withSimilarFeatures" in includes:
                doc["withSimilarFeatures"] = similar
            if "visuallySimilar" in includes:
                doc["visuallySimilar"] = similar
        text = json.dumps(drop_nulls(doc), ensure_ascii=False)
        if json_fault == "malformed":
            state.stats.fault("malformed")
            text = text.replace('":', '"=', 1)
        return Response(text, mimetype="application/json")

    @app.get(f"{CATALOGUE_PREFIX}/images")
    @app.get(f"{CATALOGUE_PREFIX}/images/")
    def list_images():
        query = ListQuery.parse(request.args)
        return _json(run_list_query(collection, query, state.base_url(), request.args))

    @app.get(SNAPSHOT_PATH)
    def snapshot():
        path = _snapshot_file(state)
        return Response(_file_chunks(path), mimetype="application/gzip",
                        headers={"Content-Length": str(path.stat().st_size)},
                        direct_passthrough=True)

    @app.get("/catalogue/v1/<path:_rest>")
    def decommissioned(_rest: str):
        raise CatalogueError(410, DECOMMISSIONED_MESSAGE)

    @app.get("/management/healthcheck")
    def healthcheck():
        return _json({"message": "ok"})

    @app.get("/_replica/stats")
    def stats():
        return _json(state.snapshot(
            timestamps=request.args.get("timestamps") == "1",
            paths=request.args.get("paths") == "1",
        ))

    @app.post("/_replica/reset")
    def reset():
        state.reset()
        return _json({"message": "reset"})

    # -- IIIF --------------------------------------------------------------------------------

    def source_for(asset: str):
        source = collection.image_source(asset)
        if source is None:
            raise iiif.IIIFError(404, f"no image with asset id {asset!r}")
        return source

    def info(service: str, asset: str):
        source = source_for(asset)
        body = iiif.info_json(f"{state.base_url()}/{service}/{asset}", source)
        return _json(body)

    def picture(asset: str, region: str, size: str, rotation: str, quality_format: str):
        source = source_for(asset)
        req = iiif.parse_image_request(region, size, rotation, quality_format, source)
        image_id = collection.image_for_asset(asset)
        config = g.get("fault_config") or state.plan.config
        fault = state.plan.thumb_fault(image_id, config) if image_id else None
        # Faults go on top of the bytes, wherever they came from: the cached bytes stay clean.
        data = state.picture_bytes((asset, region, size, rotation, quality_format), source, req)
        if fault == "corrupt_thumb":
            state.stats.fault("corrupt_thumb")
            return Response(_corrupt(data), mimetype=req.mimetype)
        if fault == "nonimage_thumb":
            state.stats.fault("nonimage_thumb")
            return Response("<html><body><h1>503 Service Unavailable</h1></body></html>",
                            mimetype="text/html")
        return Response(data, mimetype=req.mimetype,
                        headers={"Cache-Control": "public, max-age=86400"})

    for service in ("image", "thumbs"):
        app.add_url_rule(f"/{service}/<asset>/info.json", f"{service}_info",
                         lambda asset, _s=service: info(_s, asset))
        app.add_url_rule(
            f"/{service}/<asset>/<region>/<size>/<rotation>/<quality_format>",
            f"{service}_picture", picture,
        )
        app.add_url_rule(f"/{service}/<asset>", f"{service}_base",
                         lambda asset, _s=service: info(_s, asset))
    return app


def _single_includes(raw: str | None, legacy: bool) -> set[str]:
    valid = LEGACY_SINGLE_INCLUDES if legacy else SINGLE_INCLUDES
    values = parse_csv(raw or "")
    bad = [v for v in values if v not in valid]
    if bad:
        raise CatalogueError(400, not_valid_values("include", bad, list(valid)))
    return set(values)


class RenderCache:
    """A small FIFO cache of encoded pictures: crawlers and their retries ask for the same
    thumbnail several times (hash task, retries after faults), and rendering costs ms."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self._data: dict[tuple, bytes] = {}
        self._lock = threading.Lock()

    def get_or_render(self, key: tuple, render) -> bytes:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self.hits += 1
        if hit is not None:
            return hit
        data = render()
        with self._lock:
            if len(self._data) >= self.size:
                self._data.pop(next(iter(self._data)))
            self._data[key] = data
        return data

    def reset_counts(self) -> None:
        with self._lock:
            self.hits = 0


def _corrupt(data: bytes) -> bytes:
    """Keep the JPEG/PNG header so it sniffs as an image, then cut and scramble the rest."""
    head = data[: min(len(data), 600)]
    return head + bytes((b * 7 + 13) % 256 for b in data[600:900])


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


def _file_chunks(path: Path, size: int = 1 << 16):
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk
