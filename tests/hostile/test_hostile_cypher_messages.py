"""Ad-hoc Cypher answers say what the graph server said: names that look like clauses are
not refused (``n.show``, ``datetime.truncate``), and a statement the server rejects comes back
with the server's own message, not "check the server log" (through the real API server)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize(
    "query",
    [
        "RETURN datetime.truncate('day', datetime('2024-05-06T07:08:09Z')) AS day",
        "MATCH (n:Image) RETURN n.show LIMIT 1",
        "MATCH (n:Image) RETURN n.`set`.x AS x LIMIT 1",
    ],
)
def test_names_that_look_like_clauses_are_not_refused(api, query: str) -> None:
    r = api.post("/cypher", json={"query": query})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("0", "starts with '0'"),
        ("MATCH (n RETURN n", "Syntax error at line 1"),
        ("RETURN 1 +", "Syntax error at line 1"),
        ("MATCH (n:Image) WHERE n.id = $missing RETURN n", "missing"),
    ],
)
def test_bad_statements_say_what_is_wrong(api, embedded: bool, query: str, message: str) -> None:
    r = api.post("/cypher", json={"query": query})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["parameter"] == "query"
    assert "check the server log" not in error["message"].lower()
    if embedded or "Syntax" not in message:  # Neo4j words syntax errors its own way
        assert message in error["message"], error["message"]


def test_a_result_nested_too_deeply_is_a_clear_error(api) -> None:
    r = api.post(
        "/cypher", json={"query": "RETURN reduce(acc = [], i IN range(1, 600) | [acc]) AS deep"}
    )
    assert r.status_code == 400, r.text
    assert "nested too deeply" in r.json()["error"]["message"]
    assert api.post("/cypher", json={"query": "RETURN 1 AS one"}).status_code == 200
