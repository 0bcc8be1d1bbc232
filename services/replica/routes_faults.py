"""Request counts and transient faults for every catalogue, IIIF and snapshot request, and the
two routes that read and restart them.

One before-request hook counts each request by area and draws its transient fault (see
``faults``: 429, 5xx, slow, truncated, dropped connection) before routing decides anything,
so a 404 can be throttled like a 200; the permanent per-image faults are the catalogue's and
the IIIF routes' to apply. ``?faults=`` on any request replaces the server's faults for that
request only.

A dropped connection is the one fault Flask cannot answer: the hook marks the request and
``DropConnections``, around the whole app, ends it before a byte is sent (see there).

- ``GET /_replica/stats[?timestamps=1&paths=1]``: ``ReplicaState.counts``
- ``POST /_replica/reset``: counts and fault draws start again
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Response, g, request

from services.replica.errors import TIMEOUT_MESSAGE
from services.replica.faults import FaultConfig, FaultPlan, FaultSpecError, request_key
from services.replica.responses import error_response, json_response
from services.replica.routes_catalogue import IMAGES_PREFIX
from services.replica.routes_iiif import SERVICES
from services.replica.routes_snapshot import SNAPSHOTS_PREFIX
from services.replica.state import ReplicaState, replica_state

DROP = "replica.drop_connection"  # the WSGI environ key marking a request to drop
_IIIF_PREFIXES = tuple(f"/{service}/" for service in SERVICES)

bp = Blueprint("faults", __name__)


def area_of(path: str) -> str:
    """Which part of the replica a path belongs to: the counts are kept per area."""
    if path.startswith(_IIIF_PREFIXES):
        return "iiif"
    if path.startswith(IMAGES_PREFIX):
        return "catalogue"
    if path.startswith(SNAPSHOTS_PREFIX):
        return "snapshot"
    return "other"


@bp.before_app_request
def count_and_fault() -> Response | None:
    area = area_of(request.path)
    g.area = area
    if area == "other":
        return None
    state = replica_state()
    state.stats.request(area, request.path)
    override = request.args.get("faults")
    try:
        config = state.plan.config if override is None else FaultConfig.parse(override)
    except FaultSpecError as exc:
        return error_response(400, f"faults: {exc}")
    g.fault_config = config
    if not config.active:
        return None
    key = request_key(request.path, list(request.args.items(multi=True)))
    attempt = state.plan.next_attempt(key)
    return _transient_fault(state, area, config, key, attempt)


@bp.after_app_request
def count_status_and_truncate(response: Response) -> Response:
    area = g.get("area", "other")
    if area != "other" and not request.environ.get(DROP):
        replica_state().stats.status(area, response.status_code)
    if g.get("truncate") and not response.direct_passthrough:
        body = response.get_data()
        response.set_data(body[: max(1, len(body) // 2)])
    return response


@bp.get("/_replica/stats")
def stats() -> Response:
    return json_response(
        replica_state().counts(
            timestamps=request.args.get("timestamps") == "1",
            paths=request.args.get("paths") == "1",
        )
    )


@bp.post("/_replica/reset")
def reset() -> Response:
    replica_state().reset()
    return json_response({"message": "reset"})


def _transient_fault(
    state: ReplicaState, area: str, config: FaultConfig, key: str, attempt: int
) -> Response | None:
    """The answer of a request that draws a transient fault (None: answer it normally)."""
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
        request.environ[DROP] = True
        return Response(b"", 500)
    if kind == "429":
        retry = f"{config.retry_after:g}"
        if area == "iiif":
            return Response("Too Many Requests", 429, {"Retry-After": retry}, mimetype="text/plain")
        return error_response(429, "Too Many Requests", {"Retry-After": retry})
    status = FaultPlan.status_for(config, key, attempt)
    state.stats.fault(f"5xx:{status}")
    if area == "iiif":
        return Response(f"{status} error", status, mimetype="text/plain")
    description = TIMEOUT_MESSAGE if status == 503 else None
    return error_response(status, description)


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DropConnections:
    """WSGI middleware: a request marked ``DROP`` ends without an answer.

    When the app starts the response of such a request, this raises a connection error
    instead: before a byte is written, outside Flask (no error page is rendered, nothing is
    logged). The server (cheroot) takes a connection error with ``ECONNABORTED`` as the
    client gone: it closes the connection without answering, so the client sees what a
    dropped connection looks like, an end of stream where the response should be.
    """

    def __init__(self, wsgi_app: WSGIApp) -> None:
        self.wsgi_app = wsgi_app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        def guarded(status: str, headers: list, exc_info: Any = None) -> Any:
            if environ.get(DROP):
                raise ConnectionAbortedError(
                    errno.ECONNABORTED, "replica fault: dropped connection"
                )
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, guarded)
