"""JSON answers: read within their byte limit, parsed safely (``lookalike.safe_json``: no
nesting deep enough to exhaust the stack), a malformed body retried as possibly damaged."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from lookalike import safe_json
from lookalike.catalogue.failures import Transient, describe_json_error
from lookalike.catalogue.limits import MAX_JSON_BYTES, read_body
from lookalike.errors import CatalogueError

ACCEPT_JSON = "application/json"


def read_json(resp: requests.Response, url: str) -> Any:
    """The parsed JSON body of a 200 answer from ``url``."""
    body = read_body(
        resp,
        url,
        MAX_JSON_BYTES,
        "response_too_large",
        f"{MAX_JSON_BYTES // 1_000_000} MB for a catalogue JSON answer",
    )
    try:
        return safe_json.loads(body)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too deep
        raise Transient(
            CatalogueError(
                "malformed_json",
                f"GET {url} returned malformed JSON ({len(body)} bytes): "
                f"{describe_json_error(body, exc)}",
                url=url,
                status=resp.status_code,
            ),
            "malformed_json",
            hashlib.sha256(body).hexdigest(),
        ) from exc
