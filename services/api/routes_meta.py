"""Liveness, readiness, the OpenAPI document and a small index of the API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from services.api.context import ctx

bp = Blueprint("meta", __name__)


@bp.get("/health")
def health() -> Response:
    """The process answers. Says nothing about the graph (that is /ready)."""
    return jsonify({"status": "ok"})


@bp.get("/ready")
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


@bp.get("/openapi.json")
def openapi() -> Response:
    from services.api.openapi import document

    return jsonify(document(current_app, ctx().settings))


@bp.get("/")
def index() -> Response:
    from services.api.openapi import document

    doc = document(current_app, ctx().settings)
    return jsonify({
        "name": doc["info"]["title"], "version": doc["info"]["version"],
        "openapi": "/openapi.json",
        "endpoints": sorted(f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops),
    })
