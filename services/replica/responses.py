"""The replica's answers as Flask responses: JSON bodies and the catalogue's error JSON."""

from __future__ import annotations

import json

from flask import Response

from services.replica.errors import error_body


def json_response(body: object, status: int = 200) -> Response:
    """JSON as the catalogue writes it: UTF-8, keys in the order given."""
    return Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )


def error_response(
    status: int, description: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """The catalogue's error answer (SPEC §5; see ``errors.error_body``)."""
    return Response(
        json.dumps(error_body(status, description)),
        status=status,
        mimetype="application/json",
        headers=headers,
    )
