"""Liveness, readiness, the OpenAPI document and a small index of the API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from services.api import answers
from services.api.context import ctx
from services.api.contract import endpoint

bp = Blueprint("meta", __name__)

_DOCUMENT = {"application/json": {"type": "object"}}


@endpoint(
    bp,
    "GET",
    "/health",
    summary="Liveness: the process answers",
    tags=["meta"],
    responses={200: ("alive", answers.Health)},
)
def health() -> Response:
    """The process answers. Says nothing about the graph (that is /ready)."""
    return jsonify({"status": "ok"})


@endpoint(
    bp,
    "GET",
    "/ready",
    tags=["meta"],
    summary="Readiness: the graph answers (Redis and the index are reported)",
    responses={
        200: ("ready", answers.Ready),
        503: ("not ready; checks say what is missing", answers.Ready),
    },
)
def ready() -> Response:
    """Ready when the graph answers a query; Redis (crawls, jobs) and the index are reported."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        checks["graph"] = {"ok": True, **ctx().store.counts()}
    except Exception as exc:  # readiness reports every failure instead of raising
        ok = False
        checks["graph"] = {"ok": False, "error": str(exc)}
    try:
        import redis

        client = redis.Redis.from_url(ctx().settings.redis(), socket_timeout=2)
        client.ping()
        checks["redis"] = {"ok": True}
    except Exception as exc:  # crawls and jobs need it; reads do not
        checks["redis"] = {"ok": False, "error": str(exc)}
    index_dir = ctx().settings.index_dir
    checks["index"] = {"ok": index_dir.exists() and any(index_dir.iterdir())}
    response = jsonify({"ready": ok, "checks": checks})
    if not ok:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response


def _document() -> dict[str, Any]:
    """The app's OpenAPI document, written once: its routes and settings do not change."""
    from services.api.openapi import document

    cached = current_app.extensions.get("lookalike.openapi")
    if cached is None:
        cached = current_app.extensions["lookalike.openapi"] = document(current_app, ctx().settings)
    return cached


@endpoint(
    bp,
    "GET",
    "/openapi.json",
    summary="This document",
    tags=["meta"],
    responses={200: ("OpenAPI 3.1", _DOCUMENT)},
)
def openapi() -> Response:
    return jsonify(_document())


@endpoint(
    bp,
    "GET",
    "/",
    tags=["meta"],
    summary="The explorer (for browsers), or what this API offers (JSON)",
    responses={
        200: (
            "HTML when the client prefers it (a browser): the explorer; "
            "otherwise JSON: name, version, openapi, endpoints",
            {
                "application/json": answers.Index.model_json_schema(),
                "text/html": {"type": "string"},
            },
        )
    },
)
def index() -> Response:
    """The explorer for browsers (they prefer HTML); a JSON index of the API for everyone
    else (curl and HTTP libraries accept anything, and get JSON as before)."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        response = current_app.send_static_file("index.html")
    else:
        doc = _document()
        response = jsonify(
            {
                "name": doc["info"]["title"],
                "version": doc["info"]["version"],
                "openapi": "/openapi.json",
                "explorer": "/ (in a browser)",
                "endpoints": sorted(
                    f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops
                ),
            }
        )
    response.vary.add("Accept")
    return response
