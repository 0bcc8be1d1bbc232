"""Hostile API clients' tools: HTTP sessions from a chosen loopback address (another client,
as the API sees it), and polling for a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter


class _From(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_from(address: str) -> requests.Session:
    """A session whose connections come from ``address`` (any of 127.0.0.0/8 on Linux)."""
    session = requests.Session()
    session.mount("http://", _From(address))
    return session


def eventually(check: Callable[[], Any], what: str, within: float = 60.0) -> Any:
    """``check()``'s first true value, polled; fails naming ``what`` if none comes."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:g} s")
        time.sleep(0.1)
