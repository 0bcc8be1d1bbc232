"""Hostile HTTP requests to the real API server (gunicorn): whatever gunicorn refuses before
the application sees it (an over-long request line, oversized headers, a request that is not
HTTP) is answered in the API's JSON error shape. (Hostile bodies: test_hostile_bodies.)"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.timeout(300)


def assert_json_error(r, status: int, says: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    error = r.json()["error"]
    assert error["status"] == status and says in error["message"], error


def test_an_over_long_request_line_gets_a_json_error(api) -> None:
    r = api.get("/images/c0i000/neighborhood?depth=1&pad=" + "x" * 5000)
    assert_json_error(r, 414, "the URL (path and query string) is too long")


def test_oversized_headers_get_a_json_error(api) -> None:
    r = api.get("/health", headers={"X-Pad": "x" * 9000})
    assert_json_error(r, 431, "headers are too large")


def test_a_request_that_is_not_http_gets_a_json_error(api) -> None:
    parts = urlsplit(api.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"NOT A REQUEST\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Type: application/json" in head
    error = json.loads(body)["error"]
    assert error["status"] == 400 and "not valid HTTP" in error["message"]
