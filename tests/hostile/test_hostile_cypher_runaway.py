"""Runaway ad-hoc Cypher through the real API server (gunicorn) and graph server: it is
stopped on the graph server at the time limit, and one client cannot lock the others out."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from lookalike import stack
from lookalike.settings import Settings
from tests.hostile.clients import client_from, eventually

pytestmark = pytest.mark.timeout(300)

# Every path of up to 12 hops in a graph of 180 images and 900 edges: hours of work.
RUNAWAY = "MATCH p=(a:Image)-[*..12]-(b:Image) RETURN count(p) AS n"


def runaways(settings: Settings) -> list[dict]:
    """The runaway statements the embedded graph server is running now."""
    running = stack.server_command(settings.embedded()["graph"], "list queries") or []
    return [q for q in running if RUNAWAY in q.get("text", "")]


def test_a_runaway_query_is_stopped_on_the_graph_server(
    known_graph, servers, settings: Settings, embedded: bool
) -> None:
    local, _ = known_graph
    api = servers(local, LOOKALIKE_CYPHER_TIMEOUT_S="1")
    r = api.post("/cypher", json={"query": RUNAWAY})
    assert r.status_code == 408, r.text
    assert "1 s limit and was stopped" in r.json()["error"]["message"]
    if embedded:  # Neo4j ends it at the transaction timeout; ArcadeDB is told to
        eventually(lambda: not runaways(settings), "the graph server still runs the query")
    # Its slot is free at once: the next query runs.
    r = api.post("/cypher", json={"query": "RETURN 1 AS one"})
    assert r.status_code == 200 and r.json()["rows"] == [{"one": 1}]


def test_one_client_cannot_lock_the_others_out(
    known_graph, servers, settings: Settings, embedded: bool
) -> None:
    local, _ = known_graph
    api = servers(local, LOOKALIKE_CYPHER_TIMEOUT_S="5")
    greedy, other = client_from("127.0.0.1"), client_from("127.0.0.2")
    url = api.url + "/cypher"
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(greedy.post, url, json={"query": RUNAWAY}, timeout=60)
        if embedded:
            eventually(lambda: runaways(settings), "the first runaway query never started")
        else:
            eventually(lambda: first.running(), "the first request never started")
        # Its second runaway query waits its turn instead of taking another slot...
        second = greedy.post(url, json={"query": RUNAWAY}, timeout=60)
        assert second.status_code == 429, second.text
        assert "one at a time per client" in second.json()["error"]["message"]
        assert second.headers["Retry-After"]
        # ...so another client's query runs meanwhile.
        mine = other.post(url, json={"query": "RETURN 1 AS one"}, timeout=60)
        assert mine.status_code == 200 and mine.json()["rows"] == [{"one": 1}], mine.text
        assert not first.done()
        assert first.result().status_code == 408
    if embedded:
        eventually(lambda: not runaways(settings), "the graph server still runs the query")
