"""Pictures through the real server: thumbnails drawn on the nodes of a neighbourhood, dots
where none is cached, the seed framed; the cached thumbnail itself; the HTML report."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import networkx as nx
import numpy as np
import redis
from PIL import Image

from lookalike.settings import Settings
from lookalike_cli.main import child_command
from services.api.picture import DOT_COLOR, SEED_COLOR
from services.api.report.write import write_report
from services.indexer.service import Indexer, IndexerConfig

from .conftest import REPO, child_env, load_collection, own_graph
from .data import THUMB_COLORS, Collection, make_collection
from .report_page import HOSTILE_TITLES, assert_inert


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def pixels_near(img: np.ndarray, color: tuple[int, int, int], tol: int = 14) -> int:
    diff = np.abs(img[:, :, :3].astype(int) - np.array(color)).max(axis=2)
    return int((diff <= tol).sum())


def neighbours(col: Collection, seed: str, depth: int) -> set[str]:
    g = nx.Graph()
    g.add_edges_from((s, t) for s, t, _ in col.edges)
    return set(nx.single_source_shortest_path_length(g, seed, cutoff=depth))


def test_neighborhood_picture_has_thumbnails_on_nodes(api, collection: Collection) -> None:
    r = api.get("/images/c0i000/neighborhood.png?depth=1&size=700")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
    assert img.shape[:2] == (700, 700)
    inside = neighbours(collection, "c0i000", 1)
    for image_id, color in collection.thumbs.items():
        found = pixels_near(img, color)
        if image_id in inside:
            assert found >= 200, f"thumbnail of {image_id} not drawn ({found} pixels)"
        else:
            assert found < 20, f"thumbnail of {image_id} drawn but not in the neighbourhood"
    # The seed is framed in red; images without a cached thumbnail are dots.
    assert pixels_near(img, _hex_rgb(SEED_COLOR), tol=10) >= 100
    if inside - set(collection.thumbs):
        assert pixels_near(img, _hex_rgb(DOT_COLOR), tol=10) >= 20


def test_picture_without_any_thumbnail_is_dots(api, collection: Collection) -> None:
    r = api.get("/images/c4i004/neighborhood.png?depth=1&size=400")
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
    assert all(pixels_near(img, c) < 20 for c in THUMB_COLORS)
    assert pixels_near(img, _hex_rgb(DOT_COLOR), tol=10) >= 50


def test_picture_limits(api) -> None:
    r = api.get("/images/c0i000/neighborhood.png?limit=1000")
    assert r.status_code == 400 and r.json()["error"]["parameter"] == "limit"
    assert api.get("/images/nothere1/neighborhood.png").status_code == 404


def test_cached_thumbnail(api, collection: Collection) -> None:
    r = api.get("/images/c0i001/thumbnail")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    color = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))[10, 10]
    assert np.abs(color.astype(int) - collection.thumbs["c0i001"]).max() <= 6
    r = api.get("/images/c3i001/thumbnail")
    assert r.status_code == 404 and "no cached thumbnail" in r.json()["error"]["message"]


def test_report_renders_on_a_small_graph(
    settings, embedded, collection: Collection, tmp_path
) -> None:
    with own_graph(settings, embedded) as (local, store):
        load_collection(store, local, collection)
        # Crawl records live in Redis, which other tests fill: an empty database of its own.
        redis_url = urlsplit(local.redis())._replace(path="/15").geturl()
        redis.Redis.from_url(redis_url).flushdb()
        local = local.model_copy(update={"redis_url": redis_url})
        # The index sidecar finds the planted near-duplicates and writes their groups.
        config = IndexerConfig.from_settings(local, index_dir=tmp_path / "index", trees=2)
        Indexer(store, config).build_once("report test")
        path = write_report(local, tmp_path / "report", seed="c0i000", store=store)
        groups = {i: n.get("dup_group") for i, n in store.export_all().nodes.items()}
    page = path.read_text()
    for heading in (
        "Collection",
        "Crawl",
        "Graph metrics",
        "Degree histogram",
        "A neighbourhood",
        "Near-duplicate groups",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert f"<td>{len(collection.images)}</td>" in page  # images counted
    # Every planted copy is grouped with its original, and every group is in the report.
    for original, copy in collection.near_pairs:
        assert groups[original] is not None and groups[original] == groups[copy]
        size = sum(1 for g in groups.values() if g == groups[original])
        assert f"group {groups[original]} ({size} images)" in page
    assert "data:image/jpeg;base64," in page  # c0i000's thumbnail in its group
    assert "No record of any crawl" in page
    for png in ("degree_histogram.png", "neighborhood.png"):
        with Image.open(path.parent / png) as im:
            assert im.format == "PNG" and im.size[0] >= 600
    drawn = np.asarray(Image.open(path.parent / "neighborhood.png").convert("RGB"))
    assert pixels_near(drawn, collection.thumbs["c0i001"]) >= 200


def report_command(local: Settings, out: Path, *args: str) -> str:
    """The page `lookalike report --out OUT ARGS...` writes, run as a user runs it."""
    run = subprocess.run(
        child_command("report", "--out", str(out), *args),
        env=child_env(local),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert str(out / "report.html") in run.stdout
    return (out / "report.html").read_text()


def test_report_command_without_near_duplicates(known_graph, tmp_path) -> None:
    local, _ = known_graph
    out = tmp_path / "r2"
    page = report_command(local, out)
    assert "No near-duplicate groups found" in page
    assert (out / "neighborhood.png").exists() and (out / "degree_histogram.png").exists()


def test_report_escapes_hostile_titles(settings, embedded, tmp_path) -> None:
    """Titles and licences written to break out of the markup, stored in the graph, come out
    of `lookalike report` as text: in the neighbourhood's caption, the ranked lists and the
    near-duplicate groups."""
    hostile = make_collection()
    for n, image in enumerate(hostile.images):
        image["title"] = HOSTILE_TITLES[n % len(HOSTILE_TITLES)]
        image["license"] = HOSTILE_TITLES[n % 2]
    seed = hostile.images[0]["id"]
    with own_graph(settings, embedded) as (local, store):
        load_collection(store, local, hostile)
        config = IndexerConfig.from_settings(local, index_dir=tmp_path / "index", trees=2)
        Indexer(store, config).build_once("hostile report")
        page = report_command(local, tmp_path / "report", "--seed", seed)
    text = assert_inert(page)
    assert f"Seed {seed} — {HOSTILE_TITLES[0]};" in text
    assert text.count(f"{HOSTILE_TITLES[0]}: ") == 1  # its licence counted
    for title in HOSTILE_TITLES:
        # captions of near-duplicates and entries of the ranked lists
        assert text.count(title) >= 3, title
    assert "data:image/jpeg;base64," in page
