"""JSON errors for every failure, each saying what was wrong and what to do about it.

Why one error shape: frontends and scripts branch on ``status`` and show ``message``; when a
single query parameter was at fault, ``parameter`` names it so a form can highlight the field.
Every path out of the app (validation, unknown routes, oversized bodies, an unreachable
graph, a bug) ends here, so no client ever has to parse an HTML error page.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.exceptions import HTTPException

from lookalike.graph import GraphUnavailable
from lookalike.settings import SettingsError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: HTTP status, a message for people, and optionally the bad parameter."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameter = parameter
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.parameter is not None:
            error["parameter"] = self.parameter
        return {"error": error}


def bad_request(message: str, parameter: str | None = None) -> ApiError:
    return ApiError(400, message, parameter=parameter)


def not_found(message: str, parameter: str | None = None) -> ApiError:
    return ApiError(404, message, parameter=parameter)


def error_response(err: ApiError) -> Response:
    response = jsonify(err.body())
    response.status_code = err.status
    for key, value in err.headers.items():
        response.headers[key] = value
    return response


# Messages for the HTTP errors Flask/werkzeug raise themselves (routing, body size, methods).
_HTTP_MESSAGES = {
    404: "no such endpoint: {path}. The endpoints are listed in /openapi.json",
    405: "{method} is not allowed on {path}; see /openapi.json for the methods it accepts",
    413: "the request body is larger than the limit of {limit} bytes (an uploaded picture may "
    "have at most {upload} bytes); send a smaller file",
}


def install_error_handlers(app: Flask) -> None:
    from flask import request

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response:
        status = err.code or 500
        template = _HTTP_MESSAGES.get(status)
        if template:
            message = template.format(
                path=request.path,
                method=request.method,
                limit=app.config.get("MAX_CONTENT_LENGTH"),
                upload=app.config.get("LOOKALIKE_MAX_UPLOAD_BYTES"),
            )
        else:
            message = err.description or err.name
        headers = {}
        if status == 405 and err.get_response().headers.get("Allow"):
            headers["Allow"] = err.get_response().headers["Allow"]
        return error_response(ApiError(status, message, headers=headers))

    @app.errorhandler(GraphUnavailable)
    def _graph_down(err: GraphUnavailable) -> Response:
        return error_response(ApiError(503, str(err), headers={"Retry-After": "5"}))

    @app.errorhandler(SettingsError)
    def _no_graph(err: SettingsError) -> Response:
        return error_response(ApiError(503, str(err), headers={"Retry-After": "5"}))

    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    def _redis_down(err: Exception) -> Response:
        return error_response(
            ApiError(
                503,
                f"Redis (crawl state and the task queue) is not answering ({err}); is it "
                "running? Check `lookalike status`, or REDIS_URL.",
                headers={"Retry-After": "5"},
            )
        )

    @app.errorhandler(Exception)
    def _bug(err: Exception) -> Response:
        # Anything else is our bug: log it with the traceback, tell the client without internals.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            ApiError(
                500,
                f"internal error ({type(err).__name__}); the server log has the details",
            )
        )
