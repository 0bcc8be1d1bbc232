"""One deadline for a whole HTTP request: connecting, headers and body together.

Why: a socket timeout bounds each read, not the request. A server that sends one byte every
half second (a slow-trickle thumbnail, headers dribbled out) never trips a read timeout, and
a worker would wait on it for as long as the server likes. Here a request made inside
``with Deadline(seconds)`` through a session mounted with ``DeadlineAdapter`` has its connection
shut down by a watchdog thread when the deadline passes: the blocked read ends at once, the
request fails with a ``requests`` connection error, and ``Deadline.expired`` says why.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class Deadline:
    """The deadline of the requests this thread makes in a ``with Deadline(seconds):`` block
    (through ``DeadlineAdapter``), counted from the first time one of them uses a connection
    (so waiting for a rate limit before it does not count)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at: float | None = None
        self.expired = False
        self.done = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self._previous: Deadline | None = None

    def __enter__(self) -> Deadline:
        self._previous = getattr(_current, "deadline", None)
        _current.deadline = self
        return self

    def __exit__(self, *exc: object) -> None:
        _current.deadline = self._previous
        with self._lock:
            self.done = True

    def attach(self, conn: HTTPConnection) -> None:
        with self._lock:
            if conn not in self._connections:
                self._connections.append(conn)
            cut = self.expired
            start = self.at is None
            if start:
                self.at = time.monotonic() + self.seconds
        if start:
            _watchdog.watch(self)
        if cut:
            _shut(conn)

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            connections = list(self._connections)
        for conn in connections:
            _shut(conn)


def _shut(conn: HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        # The plain socket's shutdown, also for TLS: it wakes a read blocked in another
        # thread without touching the TLS state that thread is using.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One thread per process that expires deadlines in time order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._started = False

    def watch(self, entry: Deadline) -> None:
        with self._wake:
            if not self._started:
                threading.Thread(target=self._run, name="http-deadline", daemon=True).start()
                self._started = True
            heapq.heappush(self._heap, (entry.at or time.monotonic(), next(self._order), entry))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                at, _, entry = self._heap[0]
                now = time.monotonic()
                if entry.done:
                    heapq.heappop(self._heap)
                    continue
                if at > now:
                    self._wake.wait(at - now)
                    continue
                heapq.heappop(self._heap)
            entry.expire()


_watchdog = _Watchdog()
_current = threading.local()


def _after_fork() -> None:
    # A forked child (a Celery pool process) has no watchdog thread, and its parent's lock
    # may have been held at the fork: it starts afresh.
    global _watchdog
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_after_fork)


def _attach_current(conn: HTTPConnection) -> None:
    entry: Deadline | None = getattr(_current, "deadline", None)
    if entry is not None:
        entry.attach(conn)


class _HTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _attach_current(self)

    def request(self, *args: Any, **kwargs: Any) -> None:  # a kept-alive connection, reused
        _attach_current(self)
        super().request(*args, **kwargs)


class _HTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _attach_current(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self)
        super().request(*args, **kwargs)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections a ``Deadline`` can cut off (proxied ones too)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
