"""Redirects, followed by hand so that every hop is checked against the allowed hosts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

import requests

from lookalike.catalogue.offsite import check_host, check_redirect
from lookalike.catalogue.transport import Transport
from lookalike.errors import CatalogueError

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


def get_following(
    transport: Transport,
    url: str,
    params: Mapping[str, Any] | None,
    allowed: tuple[str, ...],
    what: str,
    accept: str,
) -> tuple[requests.Response, str]:
    """GET ``url`` (a ``what``), following redirects only within ``allowed``: the final
    response, body unread, and its URL."""
    for _hop in range(MAX_REDIRECTS + 1):
        check_host(url, allowed, what)
        resp = transport.get(url, params, accept)
        if resp.status_code not in REDIRECT_STATUSES or "Location" not in resp.headers:
            return resp, resp.url
        target = urljoin(resp.url, resp.headers["Location"])
        resp.close()
        transport.stats.count("redirects")
        check_redirect(resp.url, target, allowed)
        url, params = target, None
    raise CatalogueError(
        "http_error", f"more than {MAX_REDIRECTS} redirects starting from {url}", url=url
    )
