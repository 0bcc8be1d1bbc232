"""The replica's Flask app: the catalogue API v2 and its IIIF image server on one port.

One blueprint per part, each in its own module:

- ``routes_catalogue``: ``/catalogue/v2/images/{id}``, ``/catalogue/v2/images`` (SPEC §3-4),
  ``/management/healthcheck``, ``/catalogue/v1/*`` (410)
- ``routes_iiif``: ``/image/…`` and ``/thumbs/…`` (IIIF Image API 2, SPEC §7)
- ``routes_snapshot``: ``/catalogue/v2/snapshots/images.json.gz`` (SPEC §8)
- ``routes_faults``: request counts and transient faults for all of the above,
  ``/_replica/stats`` and ``/_replica/reset``

What they share (collection, fault plan, counts, pictures) is a ``ReplicaState`` in
``app.extensions``. Anything else answers the catalogue's 404 ``Page not found for URL …``;
errors under a IIIF path are plain text, everywhere else the catalogue's error JSON.
"""

from __future__ import annotations

import os

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from services.replica import routes_catalogue, routes_faults, routes_iiif, routes_snapshot
from services.replica.collection import Collection
from services.replica.derivatives import DEFAULT_MAX_MB, DerivativeCache, collection_namespace
from services.replica.faults import FaultConfig, FaultPlan
from services.replica.picture_cache import PictureCache
from services.replica.responses import error_response
from services.replica.state import EXTENSION, ReplicaState


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
        derivatives = DerivativeCache(
            derivatives_dir, namespace=collection_namespace(collection), max_mb=derivatives_mb
        )
    app = Flask("lookalike-replica")
    app.json.sort_keys = False
    app.extensions[EXTENSION] = ReplicaState(
        collection,
        legacy,
        FaultPlan(faults),
        public_base=public_base,
        pictures=PictureCache(derivatives),
    )
    for blueprint in (routes_faults.bp, routes_catalogue.bp, routes_snapshot.bp, routes_iiif.bp):
        app.register_blueprint(blueprint)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.wsgi_app = routes_faults.DropConnections(app.wsgi_app)
    return app


def _http_error(exc: HTTPException) -> Response:
    """Routing and method errors (404, 405): plain text for IIIF, else the catalogue's JSON."""
    if g.get("area") == "iiif":
        return Response(exc.description or exc.name, exc.code or 500, mimetype="text/plain")
    if exc.code == 404:
        return error_response(404, f"Page not found for URL {request.path}")
    allow = dict(exc.get_headers()).get("Allow")
    return error_response(exc.code or 500, exc.description, {"Allow": allow} if allow else None)


def _unexpected(exc: Exception) -> Response:
    current_app.logger.exception("replica error")
    return error_response(500)
