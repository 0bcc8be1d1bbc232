"""Which hosts the client may fetch from: checked before every request and every redirect.

The catalogue's own host for JSON, the configured image hosts for thumbnails, those plus the
snapshot hosts for a bulk snapshot. A URL with user info (``https://good.org@evil.org/``) is
never allowed: it exists to fool readers.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from lookalike.errors import CatalogueError


def _default_port(scheme: str) -> int | None:
    return {"http": 80, "https": 443}.get(scheme)


def host_of(url: str) -> str:
    """``host[:port]`` of a URL, lowercase, without the scheme's default port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    if port is None or port == _default_port(parts.scheme):
        return host
    return f"{host}:{port}"


def host_allowed(url: str, allowed: Iterable[str]) -> bool:
    """Is ``url`` an http(s) URL on one of ``allowed`` (``host`` or ``host:port`` entries)?

    An entry without a port matches only the scheme's default port. URLs with user info
    (``https://good.org@evil.org/``) are never allowed: they exist to fool readers.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or _default_port(parts.scheme)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return False
    host = parts.hostname.lower()
    for entry in allowed:
        try:
            want = urlsplit("//" + entry.strip())
            want_port = want.port
        except ValueError:
            continue
        if (want.hostname or "").lower() != host:
            continue
        if (want_port if want_port is not None else _default_port(parts.scheme)) == port:
            return True
    return False


def check_host(url: str, allowed: tuple[str, ...], what: str) -> None:
    """Raise ``forbidden_host`` unless ``url`` (a ``what``) is on one of the ``allowed`` hosts."""
    if not host_allowed(url, allowed):
        raise CatalogueError(
            "forbidden_host",
            f"refusing to fetch {what} {url!r}: its host {host_of(url) or '(none)'!r} is not "
            f"one of the allowed hosts {list(allowed)}. If this host really belongs to the "
            "catalogue, add it to LOOKALIKE_IMAGE_HOSTS (thumbnails) or use the "
            "catalogue's own host.",
            url=url,
        )


def check_redirect(source: str, target: str, allowed: tuple[str, ...]) -> None:
    """Raise ``forbidden_host`` unless a redirect from ``source`` to ``target`` stays on the
    ``allowed`` hosts."""
    if not host_allowed(target, allowed):
        raise CatalogueError(
            "forbidden_host",
            f"{source} redirected to {target!r}, whose host "
            f"{host_of(target) or '(none)'!r} is not one of the allowed hosts "
            f"{list(allowed)}; not following it",
            url=source,
        )
