"""The wire: one pooled ``requests`` session per process, a User-Agent naming Lookalike, the
environment's proxies and CA bundle read once, and one rate-limited GET at a time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from lookalike.catalogue.deadline import DeadlineAdapter
from lookalike.catalogue.stats import ClientStats
from lookalike.catalogue.throttle import Throttle
from lookalike.settings import Settings


class Transport:
    """Sends GETs, each after its host's rate limit lets it; bodies are left unread.

    Workers are separate processes: a process that forks after creating it gets a session
    of its own on first use.
    """

    def __init__(self, settings: Settings, throttle: Throttle, stats: ClientStats) -> None:
        self.user_agent = settings.user_agent
        self.timeout = (min(10.0, settings.http_timeout), settings.http_timeout)
        self.throttle = throttle
        self.stats = stats
        self._session: requests.Session | None = None
        self._proxies_of: dict[tuple[str, str], dict[str, str]] = {}
        self._pid = os.getpid()

    @property
    def session(self) -> requests.Session:
        """A pooled session for this process (a forked child gets its own)."""
        if self._session is None or self._pid != os.getpid():
            session = requests.Session()
            adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = self.user_agent
            # requests re-reads proxies, the CA bundle and ~/.netrc from the environment on
            # every request (a tenth of a millisecond each, two requests per image). Read
            # them once per process instead: proxies per host in ``_proxies``, the bundle
            # here; the catalogue is public, so no netrc credentials.
            session.trust_env = False
            session.verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
            self._session = session
            self._pid = os.getpid()
        return self._session

    def _proxies(self, url: str) -> dict[str, str]:
        """The proxies the environment (``HTTPS_PROXY``, ``NO_PROXY``...) names for ``url``'s
        scheme and host, as requests would find them; read once per host."""
        origin = urlsplit(url)[:2]
        proxies = self._proxies_of.get(origin)
        if proxies is None:
            proxies = self._proxies_of[origin] = requests.utils.get_environ_proxies(url)
        return proxies

    def get(self, url: str, params: Mapping[str, Any] | None, accept: str) -> requests.Response:
        """One GET of ``url`` when the rate limit allows it; redirects are not followed."""
        self.throttle.acquire(url)
        self.stats.count("requests")
        return self.session.get(
            url,
            params=params,
            timeout=self.timeout,
            allow_redirects=False,
            stream=True,
            headers={"Accept": accept},
            proxies=self._proxies(url),
        )

    def close(self) -> None:
        if self._session is not None and self._pid == os.getpid():
            self._session.close()
        self._session = None
