"""Learned lookalikes end to end, through the real stack and the real model: real Celery
workers crawl the replica and embed every thumbnail they hash (EfficientNet-Lite0 through
onnxruntime), the indexer takes the vectors in from Redis and writes LOOKS_LIKE, the API
(a real server) and the CLI answer ``lookalikes`` and ``audit`` exactly as a plain numpy
cosine over the test's own embeddings of the same thumbnails, and a model change (another
recipe) has the workers embed every image again."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from lookalike import vectors as stream
from lookalike.hashing import decode_image
from lookalike.settings import Settings
from lookalike_cli.main import child_command
from services.indexer import generations as gens
from services.indexer.service import Indexer, IndexerConfig, celery_reembed
from services.replica.collection import Collection
from services.replica.server import run_replica
from tests.api.conftest import start_server
from tests.crawl.conftest import crawl_settings
from tests.crawl.reference import reference_bfs
from tests.crawl.test_crawl_e2e import pick_seed, wait
from tests.support import REPO, child_env
from workers import control

pytestmark = pytest.mark.timeout(900)

OTHER_RECIPE = "pad224-avg"


def _embedder(settings: Settings):
    embedder = stream.embedder(settings)
    if embedder is None:
        pytest.skip("embeddings are off (LOOKALIKE_EMBEDDINGS=0)")
    return embedder


def _truth(collection: Collection, ids: list[str], settings: Settings) -> np.ndarray:
    """The test's own embeddings of the thumbnails the crawler fetched (the replica's
    !400,400 renderings), one row per id."""
    embedder = _embedder(settings)
    rows = [
        embedder.embed(decode_image(collection.thumbnail_bytes(collection.asset_id(i), "!400,400")))
        for i in ids
    ]
    return np.stack(rows)


def _top(ids: list[str], matrix: np.ndarray, row: int, k: int) -> list[tuple[str, float]]:
    scores = matrix @ matrix[row]
    scores[row] = -np.inf
    order = np.lexsort((np.arange(len(ids)), -scores))[:k]
    return [(ids[j], float(scores[j])) for j in order]


def assert_top_k(
    got: list[tuple[str, float]], ids: list[str], matrix: np.ndarray, row: int, k: int, atol: float
) -> None:
    """``got`` is a top-k of ``ids[row]`` by cosine over ``matrix``: each score is the true
    cosine, and the scores are numpy's k best (so ties at the border may pick either)."""
    assert len(got) == min(k, len(ids) - 1)
    for other, score in got:
        assert score == pytest.approx(float(matrix[row] @ matrix[ids.index(other)]), abs=atol)
    want = [c for _, c in _top(ids, matrix, row, k)]
    assert np.allclose(sorted((c for _, c in got), reverse=True), want, atol=atol)
    assert [c for _, c in got] == sorted((c for _, c in got), reverse=True)


def _cli(local: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        child_command(*args),
        env=child_env(local),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_crawl_embeds_indexer_writes_looks_like_and_answers_equal_numpy(
    demo_collection: Path, fresh_graph, workers, redis_url, tmp_path
) -> None:
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    expected = reference_bfs(collection.similar_ids, [seed], 2)
    r = redis.Redis.from_url(redis_url)
    with run_replica(collection) as replica:
        w = workers(local, replica.env(), n=2)
        s = crawl_settings(local, replica.env())
        model = stream.current_model(s)
        if model is None:
            pytest.skip("embeddings are off (LOOKALIKE_EMBEDDINGS=0)")
        record = control.start_crawl(s, [seed], 2)
        final = wait(s, record["id"], w, 600)
        assert final["status"] == "done", w.log_text()
        counts = final["counts"]
        assert counts["failed_total"] == 0, control.crawl_failures(s, record["id"])

        # every hashed image is embedded by the model, and its vector waits in Redis
        ids = sorted(expected.nodes)
        nodes = store.get_images(ids)
        assert all(nodes[i].get("hashed_at") for i in ids)
        assert {nodes[i].get("embed_model") for i in ids} == {model}
        assert counts["embedded"] == counts["hashed"] == len(ids)
        waiting, _, bad = stream.read_all(r)
        assert bad == 0 and {e.image_id for e in waiting} == set(ids)
        truth = _truth(collection, ids, s)
        by_id = {e.image_id: e.vector for e in waiting}
        assert np.allclose(np.stack([by_id[i] for i in ids]), truth, atol=1e-4)

        # the indexer: vectors into a generation, LOOKS_LIKE into the graph
        config = IndexerConfig.from_settings(s, trees=5)
        assert config.model == model
        report = Indexer(store, config, r, celery_reembed).build_once("e2e")
        assert report.vectors == len(ids) and report.missing == 0
        assert stream.pending(r) == 0
        k = config.looks_like_k
        for row, image_id in enumerate(ids):
            stored = store.read("looks_like_of", id=image_id, refined=False)
            assert_top_k([(x["id"], x["score"]) for x in stored], ids, truth, row, k, 1e-3)
            assert {x["model"] for x in stored} == {model}
        refined = np.load(report.build.path / "refined.npy")

        # the API, a real server: lookalikes and the audit equal numpy's cosines
        api = start_server(local, tmp_path / "api.log")
        try:
            row = ids.index(seed)
            got = api.get(f"/images/{seed}/lookalikes?k=5").json()
            assert_top_k(
                [(m["id"], m["score"]) for m in got["lookalikes"]], ids, truth, row, 5, 1e-4
            )
            assert got["model"] == model and got["generation"] == report.build.path.name
            got = api.get(f"/images/{seed}/lookalikes?k=5&refined=true").json()
            assert_top_k(
                [(m["id"], m["score"]) for m in got["lookalikes"]], ids, refined, row, 5, 1e-4
            )
            assert all(m["refined"] for m in got["lookalikes"])
            assert api.get("/images/zzzz/lookalikes").status_code == 404

            edges = store.export_all().edges
            listed = {(a, b) for a, b, _ in edges}
            page = api.get("/audit?section=edges&limit=500").json()
            assert page["total"] == len(edges) == len(page["items"])
            for item in page["items"]:
                a, b = ids.index(item["source"]), ids.index(item["target"])
                assert item["cos_raw"] == pytest.approx(float(truth[a] @ truth[b]), abs=1e-4)
                assert item["cos_refined"] == pytest.approx(
                    float(refined[a] @ refined[b]), abs=1e-4
                )
                assert item["reciprocal"] == ((item["target"], item["source"]) in listed)
            least = api.get("/audit?section=least_supported&limit=5").json()["items"]
            raw = sorted(x["cos_raw"] for x in page["items"])
            assert [x["cos_raw"] for x in least] == raw[:5]
            unlisted = api.get("/audit?section=unlisted&limit=500").json()
            fetched = {i for i in ids if nodes[i].get("fetched_at")}
            for item in unlisted["items"]:
                assert (item["a"], item["b"]) not in listed
                assert (item["b"], item["a"]) not in listed
                assert item["a"] in fetched or item["b"] in fetched
                a, b = ids.index(item["a"]), ids.index(item["b"])
                assert float(truth[a] @ truth[b]) >= unlisted["summary"]["strong"] - 1e-4

            # POST /search ranks by embedding too: a picture finds itself first
            picture = collection.thumbnail_bytes(collection.asset_id(seed), "!400,400")
            found = api.post(
                "/search", files={"image": ("p.jpg", picture, "image/jpeg")}, data={"k": "3"}
            ).json()
            assert found["embedding"][0]["id"] == seed
            assert found["embedding"][0]["score"] == pytest.approx(1.0, abs=1e-4)
        finally:
            api.stop()

        out = _cli(local, "lookalikes", seed, "-k", "3")
        assert out.returncode == 0, out.stderr
        assert _top(ids, truth, ids.index(seed), 1)[0][0] in out.stdout.splitlines()[2]
        out = _cli(local, "audit", "--limit", "3")
        assert out.returncode == 0, out.stderr
        assert f"{len(edges)} SIMILAR_TO edges" in out.stdout

        # the report's audit section: the least supported edges, thumbnails side by side
        from services.api.report.write import write_report

        page = write_report(local, tmp_path / "report", store=store).read_text()
        section = page.split("<h2>Audit of the similar lists</h2>", 1)[1]
        assert "Least supported similar-list entries" in section
        weakest = least[0]
        assert f"<code>{weakest['source']}</code>" in section.split("<h3>Strong")[0]
        assert section.count('<div class="pair">') >= 2
        assert "data:image/jpeg;base64," in section

        # a model change: the workers (now with another recipe) embed every image again,
        # asked by the indexer, and the next generation holds only the new model's vectors
        for proc in w.procs:
            w.kill(proc)
        other = s.model_copy(update={"embed_recipe": OTHER_RECIPE})
        new_model = stream.current_model(other)
        assert new_model and new_model != model
        w2 = workers(local, replica.env(), n=2, LOOKALIKE_EMBED_RECIPE=OTHER_RECIPE)
        changed = Indexer(store, IndexerConfig.from_settings(other, trees=5), r, celery_reembed)
        assert changed.build_once("model change").reembed == len(ids)
        start = time.monotonic()
        while time.monotonic() - start < 300:
            nodes = store.get_images(ids)
            if {nodes[i].get("embed_model") for i in ids} == {new_model}:
                break
            assert any(p.poll() is None for p in w2.procs), w2.log_text()
            time.sleep(1)
        assert {nodes[i].get("embed_model") for i in ids} == {new_model}, w2.log_text()
        report = changed.build_once("embedded again")
        assert report.vectors == len(ids)
        meta = gens.read_meta(gens.current_path(config.index_dir))
        assert meta["vectors"]["model"] == new_model
        new_truth = _truth(collection, ids, other)
        reader_vectors = np.load(report.build.path / "vectors.npy")
        assert np.allclose(reader_vectors, new_truth, atol=1e-4)
