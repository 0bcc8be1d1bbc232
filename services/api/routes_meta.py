"""Liveness, readiness, the OpenAPI document and a small index of the API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from services.api import answers
from services.api.context import ctx
from services.api.contract import endpoint

bp = Blueprint("meta", __name__)

_DOCUMENT = {"application/json": {"type": "object"}}


@endpoint(bp, "GET", "/health", summary="Liveness: the process answers", tags=["meta"],
          responses={200: ("alive", answers.Health)})
def health() -> Response:
    """The process answers. Says nothing about the graph (that is /ready)."""
    return jsonify({"status": "ok"})


@endpoint(bp, "GET", "/ready", tags=["meta"],
          summary="Readiness: the graph answers (Redis and the index are reported)",
          responses={200: ("ready", answers.Ready),
                     503: ("not ready; checks say what is missing", answers.Ready)})
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
        cached = current_app.extensions["lookalike.openapi"] = document(
            current_app, ctx().settings)
    return cached


@endpoint(bp, "GET", "/openapi.json", summary="This document", tags=["meta"],
          responses={200: ("OpenAPI 3.1", _DOCUMENT)})
def openapi() -> Response:
    return jsonify(_document())


@endpoint(bp, "GET", "/", summary="What this API offers", tags=["meta"],
          responses={200: ("name, version, endpoints", answers.Index)})
def index() -> Response:
    doc = _document()
    return jsonify({
        "name": doc["info"]["title"], "version": doc["info"]["version"],
        "openapi": "/openapi.json",
        "endpoints": sorted(f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops),
    })
