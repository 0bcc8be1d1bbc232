"""Endpoints that start work: crawls (real Celery worker, real replica catalogue over HTTP)
and whole-graph analysis jobs (real worker, results written back to the graph); and the
bearer token that guards them."""

from __future__ import annotations

import time
from pathlib import Path

import networkx as nx
import pytest
import redis as redis_lib

from lookalike.settings import load_settings
from services.replica.collection import Collection as Replica
from services.replica.server import run_replica
from tests.crawl.reference import reference_bfs
from workers import control

from .conftest import own_graph, start_worker
from .data import Collection

pytestmark = pytest.mark.timeout(600)


def poll(fetch, done, timeout: float = 240, what: str = "") -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = fetch()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not finish in {timeout}s: {body}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def demo_replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from services.replica.builder import build_demo_collection

    return build_demo_collection(tmp_path_factory.mktemp("demo") / "collection")


def test_crawl_through_the_api(
    demo_replica: Path, settings, embedded, servers, tmp_path, redis_url
) -> None:
    replica = Replica.load(demo_replica)
    seed = next(i for i in replica.ids if len(replica.similar_ids(i)) == 5)
    expected = reference_bfs(replica.similar_ids, [seed], 2)
    with own_graph(settings, embedded) as (local, _store), run_replica(replica) as rep:
        worker = start_worker(local, tmp_path / "worker.log", **rep.env())
        try:
            api = servers(local, **rep.env())
            r = api.post("/crawls", json={"seeds": [seed], "depth": 2})
            assert r.status_code == 201, r.text
            crawl = r.json()
            assert r.headers["Location"] == f"/crawls/{crawl['id']}"
            assert crawl["seeds"] == [seed] and crawl["depth"] == 2
            final = poll(
                lambda: api.get(f"/crawls/{crawl['id']}").json(),
                lambda b: b["status"] in ("done", "failed", "cancelled"),
                what="the crawl",
            )
            assert final["status"] == "done", worker.log_text()
            assert final["counts"]["fetched"] == len(expected.fetched)
            assert final["counts"]["edges"] == len(expected.edges)
            listed = api.get("/crawls").json()["crawls"]
            assert crawl["id"] in [c["id"] for c in listed]

            # The crawl's subgraph, analysed through the API, against networkx here.
            s = load_settings(
                state_dir=local.state_dir,
                neo4j_database=local.neo4j_database,
                redis_url=local.redis(),
            )
            ids = set(control.crawl_image_ids(s, crawl["id"]))
            assert ids == expected.nodes
            body = api.get(f"/analysis?crawl={crawl['id']}").json()
            g = nx.Graph()
            g.add_nodes_from(expected.nodes)
            g.add_edges_from((a, b) for a, b, _ in expected.edges)
            assert body["nodes"] == len(expected.nodes)
            assert body["edges"] == len(expected.edges)
            assert body["density"] == pytest.approx(nx.density(g))
            assert body["degree_histogram"] == nx.degree_histogram(g)
            exported = api.get(f"/export?format=node-link&crawl={crawl['id']}").json()
            assert {
                (x["source"], x["target"], x["rank"]) for x in exported["edges"]
            } == expected.edges

            # A picture of the seed's neighbourhood now has real thumbnails from the cache.
            assert api.get(f"/images/{seed}").json()["thumbnail_cached"] is True
            png = api.get(f"/images/{seed}/neighborhood.png?depth=1")
            assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"

            # Cancelling: a crawl with no worker left to run it is cancelled at once.
            worker.stop()
            r = api.post("/crawls", json={"seeds": [seed], "depth": 3})
            second = r.json()["id"]
            r = api.delete(f"/crawls/{second}")
            assert r.status_code == 200 and r.json()["status"] == "cancelled"
            assert api.get(f"/crawls/{second}").json()["status"] == "cancelled"

            # When Redis has forgotten the crawl, the summary kept in the graph answers.
            redis_lib.Redis.from_url(redis_url).flushdb()
            kept = api.get(f"/crawls/{crawl['id']}")
            assert kept.status_code == 200, kept.text
            assert kept.json()["source"] == "graph" and kept.json()["status"] == "done"
            assert kept.json()["counts"]["fetched"] == len(expected.fetched)
        finally:
            worker.stop()


def test_crawl_requests_are_validated(api, redis_url) -> None:
    cases = [
        ({"seeds": []}, "seeds"),
        ({"seeds": "c0i000"}, "seeds"),
        ({"seeds": ["c0i000"], "depth": 99}, "depth"),
        ({"seeds": ["NOT AN ID"]}, "seeds"),
        ({"seeds": ["c0i000"], "max_images": 0}, "max_images"),
        ({"seeds": ["c0i000"], "dpeth": 2}, "dpeth"),
    ]
    for body, parameter in cases:
        r = api.post("/crawls", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["parameter"] == parameter, r.text
    assert api.post("/crawls", data="seeds=a").status_code == 400
    assert api.get("/crawls/0123456789ab").status_code == 404
    assert api.get("/crawls/not-hex!").status_code == 400
    assert api.delete("/crawls/0123456789ab").status_code == 404


def test_whole_graph_analysis_job(api, known_graph, collection: Collection, celery_worker) -> None:
    _, store = known_graph
    r = api.post("/analysis/jobs", json={"top_k": 5})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued" and r.headers["Location"] == f"/analysis/jobs/{job['id']}"
    done = poll(
        lambda: api.get(f"/analysis/jobs/{job['id']}").json(),
        lambda b: b["status"] in ("done", "failed"),
        what="the analysis job",
    )
    assert done["status"] == "done", celery_worker.log_text()
    summary = done["summary"]

    # Independent computation on the same edges.
    g = nx.DiGraph()
    g.add_nodes_from(collection.ids)
    g.add_edges_from((s, t) for s, t, _ in collection.edges)
    u = nx.Graph()
    u.add_nodes_from(sorted(g.nodes))
    u.add_edges_from(sorted(tuple(sorted(e)) for e in g.edges))
    assert summary["nodes"] == len(collection.ids)
    assert summary["edges"] == len(collection.edges)
    assert summary["images_scored"] == len(collection.ids)
    assert summary["density"] == pytest.approx(nx.density(u))
    assert summary["degree_histogram"] == nx.degree_histogram(u)
    pagerank = nx.pagerank(g, alpha=0.85, tol=1e-14, max_iter=10_000)

    # Written back onto every image: PageRank and degree as networkx computes them, Leiden
    # communities numbered by size whose quality is the summary's and at least Louvain's.
    nodes = store.export_all().nodes
    groups: dict[int, list[str]] = {}
    for image_id in collection.ids:
        node = nodes[image_id]
        assert node["pagerank"] == pytest.approx(pagerank[image_id], rel=1e-6)
        assert node["degree"] == u.degree(image_id)
        assert node["analysis_id"] == job["id"]
        groups.setdefault(node["community"], []).append(image_id)
    communities = [sorted(groups[c]) for c in range(len(groups))]
    assert summary["communities"]["count"] == len(communities)
    assert summary["communities"]["sizes"] == [len(c) for c in communities]
    quality = nx.community.modularity(u, communities)
    assert summary["communities"]["modularity"] == pytest.approx(quality, abs=1e-9)
    louvain = nx.community.louvain_communities(u, seed=42)
    assert quality >= nx.community.modularity(u, louvain) - 0.002
    assert done["progress"] == {
        "phase": "done",
        "done": len(collection.ids),
        "total": len(collection.ids),
    }
    assert set(summary["phase_seconds"]) == {"read", "compute", "write"}
    shown = api.get("/images/c2i002").json()["analysis"]
    assert shown["community"] == nodes["c2i002"]["community"]

    assert api.get("/analysis/latest").json()["id"] == job["id"]
    assert job["id"] in [j["id"] for j in api.get("/analysis/jobs").json()["jobs"]]
    members = api.get("/analysis/communities/0?limit=500").json()["images"]
    assert sorted(m["id"] for m in members) == communities[0]
    assert api.get(f"/analysis/communities/{len(communities)}").status_code == 404
    assert api.get("/analysis/jobs/ffffffffffffffff").status_code == 404
    assert api.get("/analysis/jobs/NOTHEX").status_code == 400


def test_bearer_token_guards_mutating_endpoints(known_graph, servers) -> None:
    local, _ = known_graph
    secured = servers(local, LOOKALIKE_API_TOKEN="s3cret-token")
    for method, path, body in (
        ("post", "/crawls", {"seeds": []}),
        ("post", "/analysis/jobs", {"top_k": 1000}),
        ("delete", "/crawls/0123456789ab", None),
    ):
        call = getattr(secured, method)
        r = call(path, json=body)
        assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        r = call(path, json=body, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and "not valid" in r.json()["error"]["message"]
        r = call(path, json=body, headers={"Authorization": "Bearer s3cret-token"})
        assert r.status_code in (400, 404), r.text  # past the guard: the body is judged
    # Reads stay open.
    assert secured.get("/images/c0i000").status_code == 200
    assert secured.post("/cypher", json={"query": "RETURN 1 AS x"}).status_code == 200
