"""The API's JSON encoding (orjson behind Flask's provider): the same JSON Flask's own
provider writes, for every type the API may hand it, and real responses through the server
carry non-ASCII text, errors and neighbourhoods intact."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from lookalike.graph import GraphStore
from lookalike.settings import Settings
from services.api.app import create_app
from services.api.jsonenc import OrjsonProvider

from .conftest import ApiServer, own_graph


@dataclasses.dataclass
class Point:
    x: int
    label: str


VALUES = [
    {"nodes": [{"id": "a", "depth": 0, "aspect_ratio": 1.5}], "links": [], "truncated": False},
    {"b": 1, "a": 2},  # insertion order kept, not sorted
    {1: "int key", None: "null key", False: "bool key"},
    ["ünïcødé ✓", 'tab\tquote"back\\slash', "\u2028"],
    dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    dt.date(2024, 1, 2),
    Point(3, "p"),
    decimal.Decimal("1.25"),
    uuid.UUID(int=7),
    {"big": 2**70, "small": -(2**63), "float": 0.1, "tiny": 5e-324, "neg0": -0.0},
    None,
    True,
    0,
    "",
]


@pytest.fixture()
def providers() -> Iterator[tuple[DefaultJSONProvider, OrjsonProvider]]:
    app = Flask("json-test")
    flask_own = DefaultJSONProvider(app)
    flask_own.sort_keys = False
    flask_own.compact = True
    with app.app_context():
        yield flask_own, OrjsonProvider(app)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_same_json_as_flasks_own_provider(providers, value) -> None:
    flask_own, ours = providers
    expected = flask_own.response(value).get_data()
    got = ours.response(value).get_data()
    assert json.loads(got) == json.loads(expected)
    assert got.endswith(b"\n") and json.loads(ours.dumps(value)) == json.loads(expected)
    if expected.isascii() and got.isascii():
        assert got == expected  # byte for byte when nothing needs escaping


def test_keys_stay_in_insertion_order_and_sorting_is_honoured(providers) -> None:
    _, ours = providers
    assert ours.dumps({"b": 1, "a": 2}) == '{"b":1,"a":2}'
    ours.sort_keys = True
    assert ours.dumps({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_what_json_cannot_encode_still_fails_clearly(providers) -> None:
    _, ours = providers
    with pytest.raises(TypeError, match="not JSON serializable"):
        ours.dumps({"x": object()})


def test_the_app_uses_it(settings: Settings) -> None:
    app = create_app(settings)
    assert isinstance(app.json, OrjsonProvider)
    with app.test_request_context():
        assert app.json.response({"b": 1, "a": "é"}).get_data() == '{"b":1,"a":"é"}\n'.encode()


@pytest.fixture(scope="module")
def unicode_api(
    settings: Settings, embedded: bool, servers: Callable[..., ApiServer]
) -> Iterator[tuple[ApiServer, GraphStore]]:
    with own_graph(settings, embedded) as (local, store):
        store.upsert_images(
            [
                {"id": "uni00001", "title": "Ästhetik der Ähnlichkeit — 相似 ✓"},
                {"id": "uni00002", "title": "plain", "aspect_ratio": 0.75},
            ]
        )
        store.upsert_edges([("uni00001", "uni00002", 1)], seen=1)
        yield servers(local), store


def test_neighborhood_json_through_the_server(unicode_api) -> None:
    api, store = unicode_api
    r = api.get("/images/uni00002/neighborhood?depth=1")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    data = json.loads(r.content.decode("utf-8"))
    titles = {n["id"]: n["title"] for n in data["nodes"]}
    assert titles == {"uni00001": "Ästhetik der Ähnlichkeit — 相似 ✓", "uni00002": "plain"}
    assert data["edges"] == [{"source": "uni00001", "target": "uni00002", "rank": 1}]
    assert data["nodes"][0] == {
        "id": "uni00002",
        "depth": 0,
        "title": "plain",
        "aspect_ratio": 0.75,
    }
    assert store.get_image("uni00001")["title"] == titles["uni00001"]


def test_errors_and_health_are_json_through_the_server(unicode_api) -> None:
    api, _ = unicode_api
    health = api.get("/health")
    assert health.headers["Content-Type"] == "application/json"
    assert health.json() == {"status": "ok"}
    missing = api.get("/images/nichtda1/neighborhood")
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/json"
    assert missing.json()["error"]["parameter"] == "id"
    assert "'nichtda1'" in missing.json()["error"]["message"]
