"""Hostile bodies and parameters on the endpoints that take a JSON body (``POST /crawls``,
``POST /cypher``), through the real API server (gunicorn): each is refused with a 4xx JSON
error that says what was wrong, naming the field when one is at fault, and never a 500; the
limits read the same in every endpoint."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(300)

JSON = {"Content-Type": "application/json"}

BODIES = [  # (what is sent, status, words in the message, the field at fault)
    ({"data": "{not json", "headers": JSON}, 400, "not valid JSON", None),
    ({"data": b"\xff\xfe{}", "headers": JSON}, 400, "not valid JSON", None),
    ({"data": "[1, 2]", "headers": JSON}, 400, "must be a JSON object, not list", None),
    ({"data": '"RETURN 1"', "headers": JSON}, 400, "must be a JSON object, not str", None),
    ({"data": "", "headers": JSON}, 400, "the request body is empty", None),
    ({"data": {"query": "RETURN 1"}}, 400, "not application/x-www-form-urlencoded", None),
    ({"data": "RETURN 1", "headers": {"Content-Type": "text/plain"}}, 400, "not text/plain", None),
    ({"data": "{" + '"a": {' * 50_000, "headers": JSON}, 400, "not valid JSON", None),
    (
        {"data": json.dumps({"x": "y" * 11_000_000}), "headers": JSON},
        413,
        "larger than the limit",
        None,
    ),
]


@pytest.mark.parametrize("path", ["/crawls", "/cypher"])
@pytest.mark.parametrize(
    ("send", "status", "words", "field"),
    BODIES,
    ids=lambda v: str(v)[:30] if isinstance(v, str) else None,
)
def test_bodies_that_are_not_a_json_object_are_refused_saying_why(
    api, path: str, send: dict, status: int, words: str, field: str | None
) -> None:
    r = api.post(path, **send)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    error = r.json()["error"]
    assert error["status"] == status and words in error["message"], error
    assert error.get("parameter") == field


# Every body here is refused before a crawl could start: none may reach the crawler, whose
# tasks would go to other tests' workers through the shared broker.
FIELDS = [  # (path, body, field at fault, words in the message)
    ("/crawls", {"seeds": "abcd1234"}, "seeds", "list"),
    ("/crawls", {"seeds": []}, "seeds", "(got 0 values)"),
    ("/crawls", {"seeds": ["abcd1234", "N0T AN ID"]}, "seeds", "(item 2: 'N0T AN ID')"),
    ("/crawls", {"seeds": [f"s{i:07d}" for i in range(1001)]}, "seeds", "1000"),
    (
        "/crawls",
        {"seeds": ["abcd1234"], "depth": 99},
        "depth",
        "depth must be an integer from 0 to 6 (got 99)",
    ),
    ("/crawls", {"seeds": ["abcd1234"], "depth": True}, "depth", "integer"),
    ("/crawls", {"seeds": ["abcd1234"], "depth": "2"}, "depth", "(got '2')"),
    ("/crawls", {"seeds": ["abcd1234"], "max_images": -1}, "max_images", "-1"),
    ("/crawls", {"seeds": ["abcd1234"], "seed": "x"}, "seed", "unknown"),
    ("/cypher", {}, "query", "required"),
    ("/cypher", {"query": ""}, "query", None),
    ("/cypher", {"query": 7}, "query", None),
    ("/cypher", {"query": "RETURN 1", "max_rows": "5"}, "max_rows", "(got '5')"),
    ("/cypher", {"query": "RETURN 1", "max_rows": 0}, "max_rows", None),
    ("/cypher", {"query": "RETURN 1", "max_rows": 10**40}, "max_rows", None),
    ("/cypher", {"query": "RETURN 1", "params": [1]}, "params", None),
    (
        "/cypher",
        {"query": "RETURN $p", "params": {"p": [[[[[[[1]]]]]]]}},
        "params",
        "nested deeper",
    ),
    ("/cypher", {"query": "RETURN 1", "timeout": 999}, "timeout", "unknown"),
    ("/cypher", {"query": "RETURN 1" + " " * 30_000}, "query", "20"),
]


@pytest.mark.parametrize(
    ("path", "body", "field", "words"),
    FIELDS,
    ids=[f"{p}-{f}-{i}" for i, (p, _, f, _) in enumerate(FIELDS)],
)
def test_a_bad_field_is_refused_naming_it(
    api, path: str, body: dict, field: str, words: str | None
) -> None:
    r = api.post(path, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["parameter"] == field, error
    if words:
        assert words in error["message"], error


def test_depth_reads_the_same_for_answers_and_crawls(api) -> None:
    answer = api.get("/images/c0i000/neighborhood?depth=9").json()["error"]["message"]
    crawl = api.post("/crawls", json={"seeds": ["c0i000"], "depth": 99}).json()["error"]
    assert answer == "depth must be an integer from 1 to 3 (got '9')"
    assert crawl["message"] == "depth must be an integer from 0 to 6 (got 99)"
