"""Bearer-token protection for the endpoints that change something."""

from __future__ import annotations

import hmac

from flask import request

from services.api.context import ctx
from services.api.errors import ApiError


def require_token() -> None:
    """Require ``Authorization: Bearer <api_token>`` when a token is configured.

    Only endpoints that change something (crawls, analysis jobs; ``endpoint(...,
    mutating=True)``) are guarded: reads stay open to frontends. ``hmac.compare_digest`` so
    the comparison takes the same time whatever prefix of the token a caller guessed.
    """
    secret = ctx().settings.api_token
    token = secret.get_secret_value() if secret is not None else ""
    if not token:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(
            401,
            "this endpoint needs the header 'Authorization: Bearer <token>' "
            "(the token is the server's LOOKALIKE_API_TOKEN)",
            headers={"WWW-Authenticate": 'Bearer realm="lookalike"'},
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(
            401,
            "the bearer token is not valid for this server",
            headers={"WWW-Authenticate": 'Bearer realm="lookalike", error="invalid_token"'},
        )
