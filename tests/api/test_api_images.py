"""Image, similar, neighbourhood and path endpoints through the real server, checked against
networkx on the same edges."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest

from lookalike.hashing import HASH_KINDS

from .data import Collection


def undirected(col: Collection) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(col.ids)
    g.add_edges_from((s, t) for s, t, _ in col.edges)
    return g


def test_image_has_fields_hashes_crawl_info_and_degrees(api, collection: Collection) -> None:
    image = collection.by_id("c1i004")
    r = api.get("/images/c1i004")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "c1i004" and body["title"] == image["title"]
    assert body["license"] == image["license"]
    assert body["hashes"] == {k: image[k] for k in HASH_KINDS}
    assert body["crawl"]["fetched_at"] == image["fetched_at"]
    assert body["crawl"]["hash_version"] == image["hash_version"]
    assert body["out_degree"] == sum(1 for s, _, _ in collection.edges if s == "c1i004")
    assert body["in_degree"] == sum(1 for _, t, _ in collection.edges if t == "c1i004")
    assert body["thumbnail_cached"] is False
    assert api.get("/images/c0i000").json()["thumbnail_cached"] is True


def test_similar_is_ranked(api, collection: Collection) -> None:
    r = api.get("/images/c2i007/similar")
    assert r.status_code == 200
    expected = sorted((rank, t) for s, t, rank in collection.edges if s == "c2i007")
    assert [(x["rank"], x["id"]) for x in r.json()["similar"]] == expected
    assert r.json()["count"] == len(expected)
    assert len(api.get("/images/c2i007/similar?limit=2").json()["similar"]) == 2
    assert api.get("/images/lonely01/similar").json() == {
        "id": "lonely01",
        "count": 0,
        "similar": [],
    }


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_neighborhood_matches_networkx(api, collection: Collection, depth: int) -> None:
    g = undirected(collection)
    for seed in ("c0i000", "c3i017", "c5dup"):
        r = api.get(f"/images/{seed}/neighborhood?depth={depth}")
        assert r.status_code == 200, r.text
        data = r.json()
        expected = nx.single_source_shortest_path_length(g, seed, cutoff=depth)
        assert {n["id"]: n["depth"] for n in data["nodes"]} == expected
        inside = set(expected)
        assert {(x["source"], x["target"], x["rank"]) for x in data["edges"]} == {
            e for e in collection.edges if e[0] in inside and e[1] in inside
        }
        assert data["truncated"] is False
        # Graph libraries read it as it is: networkx with its defaults.
        read = nx.node_link_graph(data)
        assert read.is_directed() and set(read.nodes) == inside
        assert read.nodes[seed]["title"] == collection.by_id(seed)["title"]


def test_neighborhood_limit_and_ids_only(api, collection: Collection) -> None:
    g = undirected(collection)
    r = api.get("/images/c0i001/neighborhood?depth=3&limit=15&properties=false")
    data = r.json()
    assert r.status_code == 200 and data["truncated"] is True and len(data["nodes"]) == 15
    lengths = nx.single_source_shortest_path_length(g, "c0i001", cutoff=3)
    assert all(lengths[n["id"]] == n["depth"] for n in data["nodes"])
    assert all(set(n) == {"id", "depth"} for n in data["nodes"])
    assert api.get("/images/zzzz9999/neighborhood?properties=false").status_code == 404


def test_neighborhood_of_an_isolated_image_is_the_image_alone(api) -> None:
    for props in ("true", "false"):
        r = api.get(f"/images/lonely01/neighborhood?depth=3&properties={props}")
        assert r.status_code == 200, r.text
        data = r.json()
        assert [n["id"] for n in data["nodes"]] == ["lonely01"] and data["nodes"][0]["depth"] == 0
        assert data["edges"] == [] and data["truncated"] is False
        assert ("title" in data["nodes"][0]) is (props == "true")


def test_paths_are_shortest(api, collection: Collection) -> None:
    g = undirected(collection)
    for a, b in (("c0i000", "c4i020"), ("c1i003", "c1i029"), ("c2dup", "c5i011")):
        r = api.get(f"/paths?from={a}&to={b}&max_hops=12")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["hops"] == nx.shortest_path_length(g, a, b)
        ids = body["ids"]
        assert ids[0] == a and ids[-1] == b and len(ids) == body["hops"] + 1
        assert all(g.has_edge(x, y) for x, y in itertools.pairwise(ids))
        assert [n["id"] for n in body["nodes"]] == ids
    same = api.get("/paths?from=c0i000&to=c0i000").json()
    assert same["hops"] == 0 and same["ids"] == ["c0i000"]


def test_no_path_and_unknown_images_are_404(api) -> None:
    r = api.get("/paths?from=c0i000&to=lonely01&max_hops=12")
    assert r.status_code == 404 and "no chain" in r.json()["error"]["message"]
    r = api.get("/paths?from=c0i000&to=nothere1")
    assert r.status_code == 404 and r.json()["error"]["parameter"] == "to"
    r = api.get("/images/nothere1")
    assert r.status_code == 404 and "nothere1" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("url", "parameter", "words"),
    [
        ("/images/c0i000/neighborhood?depth=9", "depth", "from 1 to 3 (got '9')"),
        ("/images/c0i000/neighborhood?depth=two", "depth", "integer"),
        ("/images/c0i000/neighborhood?limit=0", "limit", "from 1 to"),
        ("/images/c0i000/neighborhood?limit=999999", "limit", "from 1 to 5000"),
        ("/images/c0i000/neighborhood?properties=maybe", "properties", "true or false"),
        ("/images/c0i000/neighborhood?depht=2", "depht", "unknown query parameter"),
        ("/images/Not-An-Id/similar", "id", "lowercase letters and digits"),
        ("/images/c0i000/similar?limit=-3", "limit", "integer"),
        ("/paths?from=c0i000", "to", "required"),
        ("/paths?from=c0i000&to=c0i001&max_hops=40", "max_hops", "from 1 to 12"),
        ("/paths?from=c0i000;DROP&to=c0i001", "from", "image id"),
    ],
)
def test_bad_inputs_get_400_naming_the_parameter(api, url: str, parameter: str, words: str) -> None:
    r = api.get(url)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["status"] == 400 and error["parameter"] == parameter
    assert words in error["message"]


def test_unknown_routes_and_methods_are_json(api) -> None:
    r = api.get("/imagez/c0i000")
    assert r.status_code == 404 and "/openapi.json" in r.json()["error"]["message"]
    r = api.delete("/images/c0i000")
    assert r.status_code == 405 and "DELETE" in r.json()["error"]["message"]


def test_cors_headers_for_frontends(api) -> None:
    r = api.get("/images/c0i000", headers={"Origin": "http://localhost:3000"})
    assert r.headers.get("Access-Control-Allow-Origin") in ("*", "http://localhost:3000")
    pre = requests_options(api.url + "/cypher")
    assert pre.status_code == 200
    assert "POST" in pre.headers.get("Access-Control-Allow-Methods", "")
    assert "authorization" in pre.headers.get("Access-Control-Allow-Headers", "").lower()


def requests_options(url: str):
    import requests

    return requests.options(
        url,
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
        timeout=30,
    )


def test_health_and_readiness(api, collection: Collection) -> None:
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["graph"]["ok"] and checks["graph"]["images"] == len(collection.images)
    assert checks["graph"]["edges"] == len(collection.edges)
    assert checks["redis"]["ok"]


def test_unreachable_graph_and_redis_give_503(known_graph, servers) -> None:
    local, _ = known_graph
    down = servers(
        local, NEO4J_URI="bolt://127.0.0.1:1", NEO4J_PASSWORD="x", REDIS_URL="redis://127.0.0.1:1/0"
    )
    assert down.get("/health").status_code == 200  # the process itself is alive
    r = down.get("/images/c0i000")
    assert r.status_code == 503 and "not answering" in r.json()["error"]["message"]
    assert r.headers["Retry-After"]
    r = down.get("/crawls")
    assert r.status_code == 503 and "Redis" in r.json()["error"]["message"]
