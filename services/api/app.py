"""The Flask application factory: one app, its shared context, error handling, CORS and auth.

Run it with ``lookalike serve`` (gunicorn) or any WSGI server via ``services.api.wsgi:app``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from flask_cors import CORS

from lookalike.graph import GraphStore
from lookalike.settings import Settings
from services.api import jsonenc
from services.api.context import ApiContext
from services.api.contract import bind_contracts
from services.api.decode_budget import return_large_frees
from services.api.errors import install_error_handlers

log = logging.getLogger(__name__)

# The explorer (the page at /) is plain files: HTML, CSS and JavaScript modules of our own.
EXPLORER_DIR = Path(__file__).resolve().parent / "explorer"

# Room for multipart boundaries and form fields around an upload of the maximum size.
_MULTIPART_OVERHEAD = 64 * 1024


def create_app(
    settings: Settings,
    *,
    store: GraphStore | None = None,
    cors_origins: str | list[str] = "*",
) -> Flask:
    """Build the API for ``settings``. ``store`` lets a caller share an open GraphStore."""
    from services.api import (
        routes_analysis,
        routes_crawls,
        routes_cypher,
        routes_export,
        routes_images,
        routes_lookalikes,
        routes_meta,
        routes_search,
    )

    return_large_frees()  # decoded uploads' memory goes back to the system when freed
    app = Flask("lookalike.api", static_folder=str(EXPLORER_DIR), static_url_path="/explorer")
    app.config["MAX_CONTENT_LENGTH"] = settings.api_max_upload_bytes + _MULTIPART_OVERHEAD
    app.config["LOOKALIKE_MAX_UPLOAD_BYTES"] = settings.api_max_upload_bytes
    jsonenc.install(app)  # orjson: compact, keys in insertion order
    app.extensions["lookalike"] = ApiContext(settings, store)
    install_error_handlers(app)
    CORS(
        app,
        origins=cors_origins,
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Content-Disposition", "Retry-After"],
        max_age=600,
    )
    for module in (
        routes_meta,
        routes_images,
        routes_lookalikes,
        routes_search,
        routes_analysis,
        routes_export,
        routes_crawls,
        routes_cypher,
    ):
        app.register_blueprint(module.bp)
    bind_contracts(app, settings)  # the routes' models, with this server's limits
    return app
