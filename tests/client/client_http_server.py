"""A small scripted HTTP server for the client tests: real HTTP, answers listed in advance.

It lets the tests produce exact situations (a 429 with an HTTP-date Retry-After, a redirect
to another host, a body longer than its limit, a connection cut mid-body) that a faithful
replica has no reason to produce on demand.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    content_length: int | None = None  # lie about the length (truncated bodies)
    chunked: bool = False  # send without Content-Length


@dataclass
class Hit:
    at: float
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class ScriptedServer:
    """Answers each path with its list of replies, in order; the last one repeats."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply] | Callable[[Hit], Reply]] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                hit = Hit(time.time(), "GET", parts.path, parse_qs(parts.query), dict(self.headers))
                with server._lock:
                    server.hits.append(hit)
                    route = server.routes.get(parts.path)
                    if route is None:
                        reply = Reply(
                            404,
                            {
                                "httpStatus": 404,
                                "type": "Error",
                                "description": f"no route {parts.path}",
                            },
                        )
                    elif callable(route):
                        reply = route(hit)
                    else:
                        reply = route.pop(0) if len(route) > 1 else route[0]
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                headers = dict(reply.headers)
                if not isinstance(body, bytes | str):
                    body = json.dumps(body)
                    headers.setdefault("Content-Type", "application/json")
                if isinstance(body, str):
                    body = body.encode()
                try:
                    self.send_response(reply.status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    if reply.chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for i in range(0, len(body), 8192):
                            piece = body[i : i + 8192]
                            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        length = len(body) if reply.content_length is None else reply.content_length
                        self.send_header("Content-Length", str(length))
                        self.end_headers()
                        self.wfile.write(body)
                    if reply.content_length is not None:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients hanging up mid-answer is what some tests are about

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def route(self, path: str, *replies: Reply | Callable[[Hit], Reply]) -> None:
        if len(replies) == 1 and callable(replies[0]):
            self.routes[path] = replies[0]
        else:
            self.routes[path] = list(replies)  # type: ignore[arg-type]

    def hits_for(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
