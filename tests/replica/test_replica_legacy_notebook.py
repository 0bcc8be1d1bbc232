"""The Wellcome developers notebook 04 ("Building graphs of visually similar images") runs
unchanged against the replica in legacy mode, and builds the graph the collection implies."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import requests

from services.replica.collection import Collection
from services.replica.server import run_replica


def notebook_build_graph(base_url: str, source_id: str, n: int) -> nx.Graph:
    """``build_graph`` as notebook 04 writes it (legacy ``visuallySimilar`` include)."""
    graph = nx.Graph()

    graph.add_node(source_id)

    image_ids_to_fetch = [source_id]

    for _ in range(n):
        new_image_ids = []
        for image_id in image_ids_to_fetch:
            res = requests.get(
                base_url + "images/" + image_id,
                params={"include": "visuallySimilar"},
                timeout=30,
            ).json()

            for similar_image in res["visuallySimilar"]:
                graph.add_node(similar_image["id"])
                graph.add_edge(image_id, similar_image["id"])

                new_image_ids.append(similar_image["id"])

        image_ids_to_fetch = new_image_ids

    return graph


def expected_graph(collection: Collection, source_id: str, n: int) -> nx.Graph:
    """The same walk computed from the collection's stored lists: level by level, every
    image of the previous level expanded (repeats included, as the notebook does)."""
    graph = nx.Graph([(source_id, source_id)])
    graph.remove_edge(source_id, source_id)
    level = [source_id]
    for _ in range(n):
        nxt = []
        for image_id in level:
            for similar in collection.similar_ids(image_id):
                graph.add_edge(image_id, similar)
                nxt.append(similar)
        level = nxt
    return graph


def test_notebook_build_graph_in_legacy_mode(demo_dir: Path) -> None:
    collection = Collection.load(demo_dir)
    source = collection.ids[len(collection.ids) // 2]
    with run_replica(demo_dir, legacy=True) as rep:
        base_url = rep.catalogue_url + "/"  # the notebook's base_url ends with a slash
        graph = notebook_build_graph(base_url, source, 3)
        requests_made = rep.stats()["requests"]["catalogue"]
    want = expected_graph(collection, source, 3)
    assert set(graph.nodes) == set(want.nodes)
    assert {frozenset(e) for e in graph.edges} == {frozenset(e) for e in want.edges}
    assert len(graph.nodes) > 20
    assert requests_made == 1 + 5 + 25  # the notebook refetches repeats; so did we
    # Density and degree histogram, as the notebook goes on to compute, are well defined.
    assert 0 < nx.density(graph) < 1
    assert sum(nx.degree_histogram(graph)) == len(graph.nodes)


def test_visually_similar_matches_with_similar_features(demo_dir: Path) -> None:
    collection = Collection.load(demo_dir)
    image_id = collection.ids[0]
    with run_replica(demo_dir, legacy=True) as rep:
        both = requests.get(
            f"{rep.catalogue_url}/images/{image_id}",
            params={"include": "visuallySimilar,withSimilarFeatures"},
            timeout=10,
        ).json()
        bad = requests.get(
            f"{rep.catalogue_url}/images/{image_id}",
            params={"include": "withSimilarColors"},
            timeout=10,
        )
    assert both["visuallySimilar"] == both["withSimilarFeatures"]
    assert [d["id"] for d in both["visuallySimilar"]] == collection.similar_ids(image_id)
    assert bad.status_code == 400
    assert "'visuallySimilar', 'withSimilarFeatures'" in bad.json()["description"]


def test_normal_mode_rejects_visually_similar(demo_replica) -> None:
    image_id = demo_replica.collection.ids[0]
    resp = requests.get(
        f"{demo_replica.catalogue_url}/images/{image_id}",
        params={"include": "visuallySimilar"},
        timeout=10,
    )
    assert resp.status_code == 400
    assert resp.json()["description"].startswith("include: 'visuallySimilar' is not a valid value.")
