"""``POST /cypher`` through the real server: reads answer with limits; every dressed-up write
attempt is refused and the graph is exactly as it was afterwards."""

from __future__ import annotations

import time

import pytest

from .cypher_attempts import ALLOWED_READS, PARSER_EDGE_CASES, WRITE_ATTEMPTS
from .data import Collection


def snapshot(store) -> tuple:
    """Everything in the graph: every image's properties and every edge with its properties."""
    sub = store.export_all()
    nodes = tuple(sorted((k, tuple(sorted(v.items()))) for k, v in sub.nodes.items()))
    return nodes, tuple(sorted(sub.edges)), tuple(sorted(store.counts().items()))


def test_reads_answer(api, collection: Collection) -> None:
    r = api.post("/cypher", json={"query": "MATCH (n:Image) RETURN count(n) AS images"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [{"images": len(collection.images)}]
    assert r.json()["columns"] == ["images"]
    r = api.post(
        "/cypher",
        json={
            "query": "MATCH (a:Image {id: $id})-[r:SIMILAR_TO]->(b:Image) "
            "RETURN b.id AS id, r.rank AS rank ORDER BY rank",
            "params": {"id": "c1i001"},
        },
    )
    expected = sorted((rank, t) for s, t, rank in collection.edges if s == "c1i001")
    assert [(row["rank"], row["id"]) for row in r.json()["rows"]] == expected
    r = api.post("/cypher", json={"query": "MATCH (n:Image {id: 'c1i001'}) RETURN n"})
    node = r.json()["rows"][0]["n"]
    assert node["labels"] == ["Image"] and node["properties"]["title"] == "Plate 1 of subject 1"


@pytest.mark.parametrize("query", ALLOWED_READS)
def test_every_allowed_read_runs(api, query: str) -> None:
    r = api.post("/cypher", json={"query": query, "params": {"id": "c0i000"}})
    assert r.status_code == 200, r.text


def test_row_limit(api) -> None:
    r = api.post("/cypher", json={"query": "UNWIND range(1, 3000) AS x RETURN x"})
    body = r.json()
    assert r.status_code == 200 and body["truncated"] is True
    assert body["row_count"] == 1000 and body["rows"][-1] == {"x": 1000}
    r = api.post("/cypher", json={"query": "UNWIND range(1, 30) AS x RETURN x", "max_rows": 7})
    assert r.json()["row_count"] == 7 and r.json()["truncated"] is True
    r = api.post("/cypher", json={"query": "RETURN 1 AS x", "max_rows": 5000})
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "max_rows"


def test_write_attempts_are_refused_and_the_graph_is_unchanged(api, known_graph) -> None:
    _, store = known_graph
    before = snapshot(store)
    accepted = []
    for query in WRITE_ATTEMPTS:
        r = api.post("/cypher", json={"query": query})
        if not 400 <= r.status_code < 500:
            accepted.append((query, r.status_code, r.text[:200]))
        else:
            assert r.json()["error"]["message"]
    assert accepted == []
    # Backticked names are never keywords: these may run (reading nothing) or be rejected.
    for query in PARSER_EDGE_CASES:
        r = api.post("/cypher", json={"query": query})
        assert r.status_code in (200, 400), (query, r.text)
    assert snapshot(store) == before


def test_write_refusals_say_why(api) -> None:
    r = api.post("/cypher", json={"query": "MATCH (n:Image) SET n.title = 'x'"})
    assert r.status_code == 403
    assert "SET is not allowed" in r.json()["error"]["message"]
    r = api.post("/cypher", json={"query": "CALL db.labels()"})
    assert r.status_code == 403 and "procedure" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "parameter"),
    [
        ({}, 400, "query"),
        ({"query": ""}, 400, "query"),
        ({"query": 42}, 400, "query"),
        ({"query": "MATCH (n RETURN n"}, 400, "query"),  # the server's syntax error
        ({"query": "RETURN $x AS x", "params": [1]}, 400, "params"),
        ({"query": "RETURN 1 AS x", "limit": 3}, 400, "limit"),
    ],
)
def test_malformed_requests(api, body: dict, status: int, parameter: str) -> None:
    r = api.post("/cypher", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["parameter"] == parameter
    assert (
        api.post("/cypher", data="RETURN 1", headers={"Content-Type": "text/plain"}).status_code
        == 400
    )


def test_time_limit(known_graph, servers) -> None:
    """A query far slower than the limit is cut off with 408; the server stays usable."""
    local, _ = known_graph
    strict = servers(local, LOOKALIKE_CYPHER_TIMEOUT_S="0.2")
    slow = (
        "MATCH (a:Image), (b:Image), (c:Image) WHERE a.id + b.id + c.id = 'none' "
        "RETURN count(*) AS n"
    )
    r = strict.post("/cypher", json={"query": slow})
    assert r.status_code == 408, r.text
    assert "0.2 s limit" in r.json()["error"]["message"]
    assert strict.get("/images/c0i000").status_code == 200
    # Once the abandoned query ends, its slot frees and ad-hoc queries run again.
    deadline = time.monotonic() + 120
    while True:
        r = strict.post("/cypher", json={"query": "RETURN 1 AS one"})
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        assert r.status_code in (503, 408), r.text
        time.sleep(0.5)
    assert r.status_code == 200 and r.json()["rows"] == [{"one": 1}]
