"""The replica keeps HTTP/1.1 connections open between bodiless requests, as the real
catalogue's servers do, so a crawler's two requests per image do not each cost a new TCP
connection; requests with a body, a client's own ``Connection: close`` and a dropped
connection still end it."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from services.replica.server import ReplicaHandle, run_replica


def _connect(replica: ReplicaHandle) -> http.client.HTTPConnection:
    parts = urlsplit(replica.base_url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


def _get(conn: http.client.HTTPConnection, path: str, **headers: str):
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    return resp, resp.read()


def test_one_connection_serves_a_crawler_s_requests_in_turn(demo_replica) -> None:
    image_id = demo_replica.collection.ids[0]
    conn = _connect(demo_replica)
    resp, body = _get(conn, f"/catalogue/v2/images/{image_id}?include=withSimilarFeatures")
    assert resp.status == 200 and resp.getheader("Connection") is None
    sock = conn.sock
    info = json.loads(body)["thumbnail"]["url"]
    picture = urlsplit(info.replace("info.json", "full/!400,400/0/default.jpg")).path
    resp, body = _get(conn, picture)
    assert resp.status == 200 and body[:2] == b"\xff\xd8"  # a JPEG
    for other in demo_replica.collection.ids[1:4]:
        resp, _ = _get(conn, f"/catalogue/v2/images/{other}")
        assert resp.status == 200
    assert conn.sock is sock  # the same socket all along: never reconnected
    conn.close()


def test_requests_with_a_body_or_asking_to_close_end_the_connection(demo_replica) -> None:
    image_id = demo_replica.collection.ids[0]
    conn = _connect(demo_replica)
    conn.request("POST", f"/catalogue/v2/images/{image_id}", body=b"x" * 100)
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 405 and resp.getheader("Connection") == "close"
    conn.close()

    conn = _connect(demo_replica)
    resp, _ = _get(conn, f"/catalogue/v2/images/{image_id}", Connection="close")
    assert resp.status == 200 and resp.will_close
    conn.close()


def test_a_dropped_connection_fails_only_its_own_request(demo_replica) -> None:
    image_id = demo_replica.collection.ids[0]
    conn = _connect(demo_replica)
    assert _get(conn, f"/catalogue/v2/images/{image_id}")[0].status == 200
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _get(conn, f"/catalogue/v2/images/{image_id}?faults=drop=1")
    conn.close()
    conn = _connect(demo_replica)
    assert _get(conn, f"/catalogue/v2/images/{image_id}")[0].status == 200
    conn.close()


def test_stopping_the_replica_ends_its_kept_alive_connections(demo_dir) -> None:
    """A client holding a connection must not go on being answered by a stopped replica
    (a test that restarts the replica on the same port with a changed collection relies on
    it), just as a restarted server's clients reconnect."""
    with run_replica(demo_dir) as replica:
        image_id = replica.collection.ids[0]
        conn = _connect(replica)
        assert _get(conn, f"/catalogue/v2/images/{image_id}")[0].status == 200
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _get(conn, f"/catalogue/v2/images/{image_id}")
    conn.close()
