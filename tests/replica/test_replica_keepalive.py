"""The replica keeps HTTP/1.1 connections open between requests, as the real catalogue's
servers do, so a crawler's two requests per image do not each cost a new TCP connection;
a client's own ``Connection: close``, a dropped connection and a stopped replica end them."""

from __future__ import annotations

import http.client
import json
import os
import socket
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


def _replica_end(conn: http.client.HTTPConnection) -> socket.socket:
    """The replica's own end of a client's connection: the replica runs in this process, so
    that socket is one of this process's file descriptors."""
    client_end = conn.sock.getsockname()
    for name in os.listdir("/proc/self/fd"):
        try:
            fd = os.dup(int(name))
        except OSError:
            continue
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            continue
        try:
            if sock.type == socket.SOCK_STREAM and sock.getpeername() == client_end:
                return sock
        except OSError:
            pass
        sock.close()
    raise AssertionError(f"no socket of this process is connected to {client_end}")


def test_kept_alive_connections_send_without_delay(demo_replica) -> None:
    """TCP_NODELAY on the replica's end: otherwise, on a kept-alive connection, Nagle's
    algorithm may hold a response back until the client's delayed ACK (~40 ms a request)."""
    conn = _connect(demo_replica)
    assert _get(conn, f"/catalogue/v2/images/{demo_replica.collection.ids[0]}")[0].status == 200
    with _replica_end(conn) as end:
        assert end.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    conn.close()


def test_a_request_s_body_is_read_and_never_taken_for_the_next_request(demo_replica) -> None:
    """The body of a request the replica refuses is read to its end, so the connection stays
    usable: a body that looks like a request is not answered as one."""
    image_id = demo_replica.collection.ids[0]
    conn = _connect(demo_replica)
    conn.request(
        "POST",
        f"/catalogue/v2/images/{image_id}",
        body=b"GET /catalogue/v2/images/nothing HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 405 and not resp.will_close
    sock = conn.sock
    resp, body = _get(conn, f"/catalogue/v2/images/{image_id}")
    assert resp.status == 200 and json.loads(body)["id"] == image_id
    assert conn.sock is sock
    conn.close()


def test_a_client_asking_to_close_ends_the_connection(demo_replica) -> None:
    image_id = demo_replica.collection.ids[0]
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
        conn, quiet = _connect(replica), _connect(replica)
        for c in (conn, quiet):
            assert _get(c, f"/catalogue/v2/images/{image_id}")[0].status == 200
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _get(conn, f"/catalogue/v2/images/{image_id}")
    conn.close()
    quiet.close()  # closed in turn: the replica's end waits in TIME_WAIT, on its port
    # A replica started on the same port serves clients that reconnect: the connections the
    # stopped one closed do not hold the port.
    with run_replica(demo_dir, port=urlsplit(replica.base_url).port) as again:
        assert again.base_url == replica.base_url
        conn = _connect(again)
        assert _get(conn, f"/catalogue/v2/images/{image_id}")[0].status == 200
        conn.close()
