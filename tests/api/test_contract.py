"""The contract layer in-process (Flask's test client, no graph needed: every request here
is refused before a handler runs): one declaration gives the checks, the messages and the
document, with the limits of the settings the app was made with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from lookalike.settings import load_settings
from services.api.app import create_app
from services.api.openapi import document


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    state = tmp_path_factory.mktemp("state")
    settings = load_settings(
        environ={},
        state_dir=state,
        redis_url="redis://127.0.0.1:1/0",
        api_max_depth=2,
        max_depth=4,
        api_max_upload_bytes=1234,
    )
    return create_app(settings)


def _error(app: Flask, method: str, url: str, **kw: Any) -> dict[str, Any]:
    r = app.test_client().open(url, method=method, **kw)
    assert r.status_code == 400, r.get_data(as_text=True)
    return r.get_json()["error"]


def test_limits_come_from_the_settings_in_checks_and_document(app: Flask) -> None:
    assert _error(app, "GET", "/images/abc/neighborhood?depth=3")["message"] == (
        "depth must be an integer from 1 to 2 (got '3')"
    )
    with app.app_context():
        doc = document(app, app.extensions["lookalike"].settings)
    depth = doc["paths"]["/images/{id}/neighborhood"]["get"]["parameters"][1]
    assert depth["name"] == "depth" and depth["schema"]["maximum"] == 2
    schemas = doc["components"]["schemas"]
    assert schemas["CrawlBody"]["properties"]["depth"]["maximum"] == 4
    assert "1,234 bytes" in schemas["SearchForm"]["properties"]["image"]["description"]
    assert doc["paths"]["/analysis/compare"]["get"]["parameters"][1]["schema"]["pattern"] == (
        "^(1|2)(,(1|2)){0,1}$"
    )


def test_depth_reads_the_same_for_answers_and_crawls(app: Flask) -> None:
    answer = _error(app, "GET", "/images/abc/neighborhood?depth=9")["message"]
    crawl = _error(app, "POST", "/crawls", json={"seeds": ["abc"], "depth": 9})["message"]
    assert answer == "depth must be an integer from 1 to 2 (got '9')"
    assert crawl == "depth must be an integer from 0 to 4 (got 9)"


@pytest.mark.parametrize(
    ("url", "parameter", "words"),
    [
        ("/images/abc/neighborhood?depth=1&depth=2", "depth", "given more than once"),
        ("/images/abc/neighborhood?depht=1", "depht", "unknown query parameter depht"),
        ("/images/abc/neighborhood?properties=1", "properties", "true or false"),
        ("/images/abc/similar?limit=", "limit", "(got '')"),
        ("/export?all=false", "all", "all must be true"),
        ("/analysis?seed=abc&crawl=0123456789ab", "crawl", "exactly one of"),
        ("/analysis?ids=abc&depth=1", "depth", "only applies to seed"),
        ("/crawls/abc", "id", "12 lowercase hex digits"),
        ("/analysis/jobs/0123456789ab", "id", "16 lowercase hex digits"),
    ],
)
def test_parameters_are_refused_naming_them(
    app: Flask, url: str, parameter: str, words: str
) -> None:
    error = _error(app, "GET", url)
    assert error["parameter"] == parameter and words in error["message"]


@pytest.mark.parametrize("path", ["/crawls", "/cypher", "/analysis"])
@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"data": "{not json", "content_type": "application/json"}, "not valid JSON"),
        (
            {"data": {"seeds": "abc"}},
            "must be JSON (Content-Type: application/json), not application/x-www-form-urlencoded",
        ),
        ({"data": "[1, 2]", "content_type": "application/json"}, "must be a JSON object, not list"),
        ({"data": "", "content_type": "application/json"}, "the request body is empty"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_saying_why(
    app: Flask, path: str, kw: dict[str, Any], words: str
) -> None:
    assert words in _error(app, "POST", path, **kw)["message"]


def test_bodies_are_strict_and_unknown_fields_refused(app: Flask) -> None:
    error = _error(app, "POST", "/cypher", json={"query": "RETURN 1", "max_rows": "5"})
    assert error["parameter"] == "max_rows" and "(got '5')" in error["message"]
    error = _error(app, "POST", "/crawls", json={"seeds": ["abc"], "depth": True})
    assert error["parameter"] == "depth"
    error = _error(app, "POST", "/crawls", json={"seeds": ["abc", "N0T"]})
    assert error["parameter"] == "seeds" and "(item 2: 'N0T')" in error["message"]


def test_an_upload_form_is_checked_field_by_field(app: Flask, tmp_path: Path) -> None:
    client = app.test_client()
    r = client.post("/search", data={"kinds": "phash"}, content_type="multipart/form-data")
    assert r.status_code == 400 and r.get_json()["error"]["parameter"] == "image"
    r = client.post("/search", data={"image": "not a file"}, content_type="multipart/form-data")
    assert r.status_code == 400 and "not a text field" in r.get_json()["error"]["message"]
    r = client.post("/search", data=b"raw", content_type="image/png")
    assert r.status_code == 415


def test_rules_across_parameters_are_in_the_document(app: Flask) -> None:
    with app.app_context():
        doc = document(app, app.extensions["lookalike"].settings)
    (param,) = doc["paths"]["/analysis"]["get"]["parameters"]
    assert param["in"] == "query" and param["style"] == "form" and param["explode"] is True
    schema = doc["components"]["schemas"]["AnalysisQuery"]
    (rule,) = schema["allOf"]
    assert [option["required"] for option in rule["oneOf"]] == [["seed"], ["ids"], ["crawl"]]
    assert schema["additionalProperties"] is False
    assert "null" not in str(schema["properties"]["seed"])  # query values are never null
