"""What the explorer (and any frontend) needs from the API, through the real server: the page
itself at /, finding images by id and title words, laid-out neighbourhoods, thumbnail
placeholders, work links and paged crawl lists. Expectations are computed here from the
known collection, independently of the index and the API."""

from __future__ import annotations

import itertools
import math
import re
import time
from pathlib import Path

import networkx as nx
import pytest
import redis as redis_lib

from lookalike.graph import now_ms
from services.indexer.service import Indexer, IndexerConfig
from tests.support import own_state

from .conftest import load_collection, own_graph
from .data import Collection

EXPLORER = Path(__file__).resolve().parents[2] / "services" / "api" / "explorer"


def title_words(title: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", title.lower())


def brute_force(col: Collection, q: str) -> list[str]:
    """Images whose titles have, for every word of q, a word beginning with it; fewest
    distinct title words first, then by id."""
    query = title_words(q)
    found = [
        (len(set(title_words(i["title"]))), i["id"])
        for i in col.images
        if i.get("title")
        and (i.get("fetched_at") or i.get("hashed_at"))
        and all(any(w.startswith(p) for w in title_words(i["title"])) for p in query)
    ]
    return [i for _, i in sorted(found)]


# ---------------------------------------------------------------- the page


def test_browsers_get_the_explorer_and_clients_get_json(api) -> None:
    html = api.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert '<script type="module" src="/explorer/js/main.js">' in html.text
    assert "Accept" in html.headers["Vary"]
    listing = api.get("/")
    assert listing.headers["Content-Type"].startswith("application/json")
    assert "GET /images" in listing.json()["endpoints"]


def test_every_file_the_page_loads_is_served_from_the_api_itself() -> None:
    """Offline and no third-party code: every asset and module import is one of our files,
    and no file names another host (the SVG namespace is a name, not a request)."""
    texts = {p: p.read_text() for p in EXPLORER.rglob("*") if p.is_file()}
    assert {p.suffix for p in texts} == {".html", ".css", ".js"}
    for path, text in texts.items():
        hosts = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+", text)) - {
            "http://www.w3.org",
            "//www.w3.org",
        }
        assert not hosts, f"{path.name} names {hosts}"
    html = texts[EXPLORER / "index.html"]
    wanted = set(re.findall(r'(?:src|href)="(/explorer/[^"]+)"', html))
    for path, text in texts.items():
        if path.suffix == ".js":
            for module in re.findall(r'from "\./([\w.]+)"', text):
                wanted.add(f"/explorer/js/{module}")
    for url in wanted:
        assert (EXPLORER / url.removeprefix("/explorer/")).is_file(), url


def test_assets_are_served(api) -> None:
    for url, kind in (("/explorer/js/main.js", "javascript"), ("/explorer/explorer.css", "css")):
        r = api.get(url)
        assert r.status_code == 200 and kind in r.headers["Content-Type"], url
    assert api.get("/explorer/nothing.js").status_code == 404


# ---------------------------------------------------------------- finding images


@pytest.mark.parametrize(
    "q", ["plate 1", "Subject 3", "COPY", "pl", "plate 17 subject 4", "nothing-like-this"]
)
def test_find_by_title_words_agrees_with_a_brute_force(api, collection: Collection, q: str) -> None:
    expected = brute_force(collection, q)
    got: list[str] = []
    offset = 0
    while True:
        r = api.get("/images", params={"q": q, "offset": offset, "limit": 7})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(expected)
        got += [i["id"] for i in body["images"]]
        if body["next"] is None:
            break
        assert body["next"] == offset + 7
        offset = body["next"]
    assert got == expected
    if got:
        first = api.get("/images", params={"q": q}).json()["images"][0]
        assert first["title"] == collection.by_id(got[0])["title"]


def test_find_by_id(api) -> None:
    body = api.get("/images", params={"q": " c1i004 "}).json()
    assert body["image"]["id"] == "c1i004"
    assert body["image"]["title"] == "Plate 4 of subject 1"
    assert api.get("/images", params={"q": "plate"}).json()["image"] is None


def test_text_without_words_matches_nothing(api) -> None:
    for q in ("  ", "!!! ---"):
        body = api.get("/images", params={"q": q}).json()
        assert (body["total"], body["images"], body["image"]) == (0, [], None)


@pytest.mark.parametrize(
    "query,parameter",
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "plate", "limit": "0"}, "limit"),
        ({"q": "plate", "limit": "101"}, "limit"),
        ({"q": "plate", "offset": "-1"}, "offset"),
        ({"q": "plate", "offset": "10001"}, "offset"),
        ({"q": "plate", "page": "2"}, "page"),
    ],
)
def test_find_refuses_bad_queries_saying_which_parameter(api, query, parameter) -> None:
    r = api.get("/images", params=query)
    assert r.status_code == 400
    assert r.json()["error"]["parameter"] == parameter


def test_title_index_generation_and_titles_stored_since(
    settings, embedded, servers, tmp_path: Path
) -> None:
    """After an index build the titles come from its generation; titles stored later (a
    new image, a changed title) are found at once, the old title no longer finds them."""
    col = Collection(
        images=[
            {"id": f"t{i:03d}", "title": title, "fetched_at": 1_700_000_000_000}
            for i, title in enumerate(
                [
                    "Sunflowers",
                    "A vase of sunflowers",
                    "Café terrace at night",
                    "Portrait of the postman",
                    "Wheatfield with crows",
                ]
            )
        ]
    )
    with own_graph(settings, embedded) as (local, store):
        local = own_state(local, tmp_path / "state")  # its index is for its own server only
        load_collection(store, local, col)
        Indexer(store, IndexerConfig(index_dir=local.index_dir)).build_once("test")
        api = servers(local)

        def ids(q: str) -> list[str]:
            r = api.get("/images", params={"q": q})
            assert r.status_code == 200, r.text
            return [i["id"] for i in r.json()["images"]]

        assert ids("sunfl") == ["t000", "t001"]
        assert ids("cafe") == ["t002"]  # accents folded
        assert ids("terrace caf") == ["t002"]
        store.upsert_images(
            [
                {"id": "t100", "title": "Sunflowers, a study", "fetched_at": now_ms()},
                {"id": "t003", "title": "Portrait of Madame Roulin", "fetched_at": now_ms()},
            ]
        )
        deadline = time.monotonic() + 10  # the reader re-reads recent titles each second
        while ids("sunflowers") != ["t000", "t100", "t001"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ids("sunflowers") == ["t000", "t100", "t001"]
        assert ids("roulin") == ["t003"]
        assert ids("postman") == []


# ---------------------------------------------------------------- drawing


def test_layout_places_every_node_apart_with_the_seed_in_the_middle(
    api, collection: Collection
) -> None:
    r = api.get("/images/c2i007/neighborhood", params={"depth": 2, "layout": "spring"})
    assert r.status_code == 200, r.text
    body = r.json()
    g = nx.Graph()
    g.add_edges_from((s, t) for s, t, _ in collection.edges)
    expected = nx.single_source_shortest_path_length(g, "c2i007", cutoff=2)
    assert body["truncated"] is False and {n["id"] for n in body["nodes"]} == set(expected)
    at = {n["id"]: (n["x"], n["y"]) for n in body["nodes"]}
    assert at["c2i007"] == (0.0, 0.0)
    cached = {n["id"] for n in body["nodes"] if n["thumbnail_cached"]}
    assert cached == set(expected) & set(collection.thumbs)
    closest = min(math.dist(at[a], at[b]) for a, b in itertools.combinations(at, 2))
    assert closest >= 1.4 - 0.01
    again = api.get("/images/c2i007/neighborhood", params={"depth": 2, "layout": "spring"})
    assert again.json() == body  # the same picture every time


def test_layout_caps_the_drawing(api) -> None:
    body = api.get(
        "/images/c0i000/neighborhood", params={"depth": 3, "layout": "spring", "limit": 20}
    ).json()
    assert len(body["nodes"]) == 20 and body["truncated"] is True
    assert all("x" in n and "y" in n for n in body["nodes"])
    r = api.get(
        "/images/c0i000/neighborhood", params={"layout": "spring", "limit": 5000, "depth": 3}
    ).json()
    assert r["graph"]["limit"] == 150  # a drawing has at most 150 nodes
    r = api.get("/images/c0i000/neighborhood", params={"layout": "circle"})
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "layout"
    plain = api.get("/images/c0i000/neighborhood", params={"depth": 3}).json()
    assert len(plain["nodes"]) > 20 and "x" not in plain["nodes"][0]


def test_thumbnail_placeholder(api) -> None:
    cached = api.get("/images/c0i000/thumbnail", params={"placeholder": "true"})
    assert cached.headers["Content-Type"] == "image/jpeg"
    stand_in = api.get("/images/c3i004/thumbnail", params={"placeholder": "true"})
    assert stand_in.status_code == 200
    assert stand_in.headers["Content-Type"].startswith("image/svg+xml")
    assert stand_in.headers["Cache-Control"] == "no-cache"
    assert '<rect width="64" height="64" fill="#8a8f98"/>' in stand_in.text
    assert api.get("/images/c3i004/thumbnail").status_code == 404
    assert api.get("/images/nosuch01/thumbnail", params={"placeholder": "true"}).status_code == 404


def test_work_links(known_graph, servers) -> None:
    local, _ = known_graph
    default = servers(local)
    assert (
        default.get("/images/c1i004").json()["work_url"]
        == "https://wellcomecollection.org/works/w1004"
    )
    assert default.get("/images/c1dup").json()["work_url"] is None  # no source id
    custom = servers(local, LOOKALIKE_WORK_URL="http://127.0.0.1:9/records/{id}")
    assert custom.get("/images/c1dup").json()["work_url"] == "http://127.0.0.1:9/records/c1dup"


# ---------------------------------------------------------------- crawls


def test_crawls_are_listed_a_page_at_a_time(api, redis_url) -> None:
    started = []
    for i in range(5):
        started.append(api.post("/crawls", json={"seeds": [f"c0i00{i}"], "depth": 1}).json()["id"])
        time.sleep(0.01)  # listed newest first: no two in the same millisecond
    try:
        every = api.get("/crawls").json()
        assert every["total"] == 5
        assert [c["id"] for c in every["crawls"]] == started[::-1]  # newest first
        page = api.get("/crawls", params={"limit": 2, "offset": 2}).json()
        assert [c["id"] for c in page["crawls"]] == started[::-1][2:4]
        assert (page["total"], page["offset"], page["limit"]) == (5, 2, 2)
        assert api.get("/crawls", params={"offset": 9}).json()["crawls"] == []
        assert api.get("/crawls", params={"offset": "-1"}).status_code == 400
    finally:
        for crawl in started:  # no worker runs them; nothing may be left queued
            api.delete(f"/crawls/{crawl}")
        redis_lib.Redis.from_url(redis_url).flushdb()
