"""The gunicorn worker the API runs in: gunicorn's threaded worker, whose own error answers
(a request line over ``limit_request_line``, headers over their limits, a request that is not
HTTP) come in the API's JSON error shape instead of gunicorn's HTML page.

Why here and not in Flask: gunicorn refuses such requests before the application sees them.
The API's gunicorn configuration (``services/api/gunicorn_conf.py``) names it, so
``lookalike serve``, the Dockerfile and docker-compose.yml all use it.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

# What a client can do about each refusal; gunicorn's own detail is appended.
_ADVICE = {
    414: "the URL (path and query string) is too long; send fewer or shorter query parameters "
    "(lists of ids: a few per request)",
    431: "the request headers are too large or too many; send fewer or smaller headers",
    400: "the request is not valid HTTP",
    403: "the request was refused",
    417: "the Expect header is not supported; send the request without it",
    501: "the request uses a transfer coding this server does not support",
}


def json_error(status: int, reason: str, detail: str) -> bytes:
    """A complete HTTP response carrying ``{"error": {"status", "message"}}``."""
    if status >= 500 and status != 501:
        message = "internal error; the server log has the details"
    else:
        advice = _ADVICE.get(status, reason)
        message = f"{advice} ({detail})" if detail else advice
    body = json.dumps({"error": {"status": status, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for ``gunicorn.util.write_error``, which writes an HTML page."""
    util.write_nonblock(sock, json_error(status_int, reason, mesg))


class JsonErrorWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's ``gthread`` worker answering its own refusals in JSON.

    gunicorn decides the status and logs the refusal itself (``Worker.handle_error``) and then
    writes the page through ``gunicorn.util.write_error``; that one function is replaced, in
    the worker process only, so the statuses and logging stay gunicorn's.
    """

    def init_process(self) -> Any:
        util.write_error = write_json_error
        return super().init_process()
