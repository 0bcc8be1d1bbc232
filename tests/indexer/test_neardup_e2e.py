"""Near-duplicates people can trust, through the real graph server and the real indexer:
flat pictures are not copies of each other, groups do not chain, and a search for an exact
copy ranks the original first."""

from __future__ import annotations

import io
import os
import time

import numpy as np
from PIL import Image, ImageOps

from lookalike.graph import GraphStore
from lookalike.hashing import HASH_BITS, HASH_KINDS, algorithm_version, hash_image
from lookalike.viewstore import ViewStore
from services.indexer.graph_io import GraphHashSource
from services.indexer.reader import IndexReader
from services.indexer.service import Indexer, IndexerConfig
from services.indexer.verify import LOCAL_MAX_COLOR, PLAIN_MAX_LAYOUT
from services.replica import variants
from tests.indexer.test_core import _pictures
from tests.indexer.test_localmatch import colour_drawing, swapped
from tests.indexer.test_localpairs import _painted_over


def _store(store: GraphStore, rows: list[dict]) -> None:
    stamp = int(time.time() * 1000) - 60_000
    store.upsert_images([{"id": r["id"], "title": f"picture {r['id']}"} for r in rows])
    store.write(
        "set_hashes",
        [
            {
                "hash_version": algorithm_version(),
                "hashed_at": stamp,
                "thumbnail": f"http://example.invalid/{r['id']}.jpg",
                **r,
            }
            for r in rows
        ],
    )


def _pictured(image_id: str, picture: Image.Image) -> dict:
    return {"id": image_id, **hash_image(picture).node_properties()}


def _near(store: GraphStore, image_id: str) -> set[str]:
    return {r["id"] for r in store.read("near_duplicates_of", id=image_id) if r["id"]}


def _group(store: GraphStore, image_id: str) -> str | None:
    return store.read("near_duplicates_of", id=image_id)[0]["group"]


def _flat_page(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    tone = rng.uniform(150, 235, 3)
    ramp = np.linspace(0, rng.uniform(2, 8), 320)[None, :, None]
    page = tone + ramp + rng.normal(0, 1.5, (240, 320, 3))
    return Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))


def test_flat_pictures_do_not_match_each_other(fresh_graph, tmp_path):
    _, store = fresh_graph
    pages = [_pictured(f"page{i}", _flat_page(i)) for i in range(10)]
    painting = _pictures()[0]
    copy = Image.open(io.BytesIO(variants.edited_bytes(painting, "jpeg"))).convert("RGB")
    _store(store, [*pages, _pictured("painting", painting), _pictured("painting-jpeg", copy)])
    report = Indexer(store, IndexerConfig(index_dir=tmp_path / "index", trees=3)).build_once()
    assert report.candidates > 1  # the blank pages' hashes collide with each other ...
    for i in range(10):  # ... and none of them is claimed as a copy or grouped
        assert not _near(store, f"page{i}") and _group(store, f"page{i}") is None
    assert _near(store, "painting") == {"painting-jpeg"}  # a real copy still is
    assert _group(store, "painting") == "painting"


def test_plain_pictures_are_judged_on_their_pixels_when_their_views_are_kept(fresh_graph, tmp_path):
    """With the workers' views, a plain page and its copy (a frame added, then resized) are
    claimed on their grey layouts and colours; different plain pages still are not."""
    _, store = fresh_graph
    pages = {f"page{i}": _flat_page(i) for i in range(10)}
    framed = ImageOps.expand(pages["page0"], border=16, fill=(255, 255, 255))
    pages["page0copy"] = framed.resize((framed.width // 2, framed.height // 2))
    _store(store, [_pictured(name, p) for name, p in pages.items()])
    views = ViewStore(tmp_path / "views", max_bytes=10**8)
    for name, picture in pages.items():
        assert views.save(name, picture)
    config = IndexerConfig(index_dir=tmp_path / "index", trees=3, view_dir=tmp_path / "views")
    report = Indexer(store, config).build_once()
    assert report.local >= 1
    (row,) = [r for r in store.read("near_duplicates_of", id="page0") if r["id"]]
    assert row["id"] == "page0copy" and _group(store, "page0") == "page0"
    assert row["local"] is False and 0 <= row["layout"] <= PLAIN_MAX_LAYOUT  # what decided it
    for i in range(1, 10):
        assert not _near(store, f"page{i}") and _group(store, f"page{i}") is None


def test_local_evidence_refuses_a_repaint_and_says_which_pairs_it_judged(fresh_graph, tmp_path):
    """Through the real graph server and indexer, with views in a view store as the workers
    leave them: a picture partly painted over (hashes agree) is refused, a JPEG copy is kept
    and its relationship records that its pixels were compared; a pair whose views are
    missing is judged as before and says so."""
    _, store = fresh_graph
    pictures = _pictures()
    camera, chelsea, astronaut = pictures[1], pictures[3], pictures[0]
    painted = _painted_over(camera, chelsea)
    jpeg = Image.open(io.BytesIO(variants.edited_bytes(camera, "jpeg"))).convert("RGB")
    lone = Image.open(io.BytesIO(variants.edited_bytes(astronaut, "jpeg"))).convert("RGB")
    named = {
        "camera": camera,
        "camerajpeg": jpeg,
        "camerapainted": painted,
        "astronaut": astronaut,
        "astronautjpeg": lone,
    }
    _store(store, [_pictured(name, p) for name, p in named.items()])
    views = ViewStore(tmp_path / "views", max_bytes=10**8)
    for name in ("camera", "camerajpeg", "camerapainted"):
        assert views.save(name, named[name])
    index = tmp_path / "index"
    Indexer(store, IndexerConfig(index_dir=index, trees=3)).build_once()
    assert _near(store, "camera") == {"camerajpeg", "camerapainted"}  # hashes alone
    report = Indexer(
        store, IndexerConfig(index_dir=index, trees=3, view_dir=tmp_path / "views")
    ).build_once()
    assert report.local >= 2
    rows = {r["id"]: r for r in store.read("near_duplicates_of", id="camera") if r["id"]}
    assert set(rows) == {"camerajpeg"}  # the painted cells tell
    assert rows["camerajpeg"]["local"] is True
    assert rows["camerajpeg"]["inliers"] >= 8 and rows["camerajpeg"]["local_score"] >= 0.976
    (unviewed,) = [r for r in store.read("near_duplicates_of", id="astronaut") if r["id"]]
    assert unviewed["id"] == "astronautjpeg" and unviewed["local"] is False
    assert unviewed["inliers"] is None and unviewed["local_score"] is None
    assert unviewed["layout"] is None and rows["camerajpeg"]["layout"] >= 0

    # the next build reuses what this one found while the views are unchanged ...
    with_views = IndexerConfig(index_dir=index, trees=3, view_dir=tmp_path / "views")
    again = Indexer(store, with_views).build_once("again")
    assert again.local == report.local and again.local_reused == report.local
    assert _near(store, "camera") == {"camerajpeg"}
    # ... and compares again the pairs of a view written anew (a new thumbnail)
    assert views.save("camerajpeg", jpeg)
    third = Indexer(store, with_views).build_once("new view")
    assert third.local == report.local and 0 < third.local_reused < report.local
    assert _near(store, "camera") == {"camerajpeg"}

    # the one ranking weighs the pictures too: an upload of the camera, and the stored one
    reader = IndexReader(index, GraphHashSource(store), views=views.get)
    buf = io.BytesIO()
    camera.convert("RGB").save(buf, "PNG")
    for ranked in (reader.rank_image(buf.getvalue(), k=4)[1], reader.rank_id("camera", k=3)):
        by_id = {r.id: r for r in ranked}
        assert by_id["camerajpeg"].match and not by_id["camerapainted"].match
        assert by_id["camerapainted"].reasons[-1].endswith("the pictures differ")
    without = {r.id: r for r in IndexReader(index, GraphHashSource(store)).rank_id("camera", k=3)}
    assert without["camerapainted"].match  # hashes alone are fooled


def test_colours_where_the_pictures_align_refuse_a_colour_variant(fresh_graph, tmp_path):
    """Through the real graph server and indexer, with the workers' views: the red-blue
    variant of a drawing (hashes and grey cells alike) is refused, a JPEG copy is kept and
    its relationship records how far apart its colours are where the two align; the one
    ranking says why the variant is not a copy."""
    _, store = fresh_graph
    drawing = colour_drawing()
    jpeg = Image.open(io.BytesIO(variants.edited_bytes(drawing, "jpeg"))).convert("RGB")
    named = {"drawing": drawing, "drawingjpeg": jpeg, "drawingswapped": swapped(drawing)}
    _store(store, [_pictured(name, p) for name, p in named.items()])
    views = ViewStore(tmp_path / "views", max_bytes=10**8)
    for name, picture in named.items():
        assert views.save(name, picture)
    index = tmp_path / "index"
    config = IndexerConfig(index_dir=index, trees=3, view_dir=tmp_path / "views")
    assert Indexer(store, config).build_once().local >= 2
    rows = {r["id"]: r for r in store.read("near_duplicates_of", id="drawing") if r["id"]}
    assert set(rows) == {"drawingjpeg"}
    assert rows["drawingjpeg"]["local"] is True
    assert 0 <= rows["drawingjpeg"]["local_color"] <= LOCAL_MAX_COLOR
    ranked = {
        r.id: r
        for r in IndexReader(index, GraphHashSource(store), views=views.get).rank_id("drawing", k=3)
    }
    variant = ranked["drawingswapped"]
    assert not variant.match
    assert any(r.startswith("colours differ where the pictures align") for r in variant.reasons)


def test_a_build_compares_its_budget_of_pairs_and_the_next_build_the_rest(fresh_graph, tmp_path):
    """With room for two of the three pairs' comparisons per build, the pairs of the newest
    view go first (a repaint's: refused at once); the third (the original and its JPEG copy)
    is judged on its hashes for now, and the indexer is due again at once to compare it."""
    _, store = fresh_graph
    camera = _pictures()[1]
    named = {
        "camera": camera,
        "camerajpeg": Image.open(io.BytesIO(variants.edited_bytes(camera, "jpeg"))).convert("RGB"),
        "camerapainted": _painted_over(camera, _pictures()[3]),
    }
    _store(store, [_pictured(name, p) for name, p in named.items()])
    views = ViewStore(tmp_path / "views", max_bytes=10**8)
    for name, picture in named.items():
        assert views.save(name, picture)
    for age, name in enumerate(("camerapainted", "camerajpeg", "camera")):
        path = views.files.path(name)
        assert path is not None
        stamp = time.time_ns() - 1_000_000_000 * (age + 1)
        os.utime(path, ns=(stamp, stamp))  # the repaint's view is the newest
    config = IndexerConfig(
        index_dir=tmp_path / "index", trees=3, view_dir=tmp_path / "views", local_per_build=2
    )
    indexer = Indexer(store, config)
    first = indexer.build_once()
    assert first.local == 2 and first.local_deferred == 1
    rows = {r["id"]: r for r in store.read("near_duplicates_of", id="camera") if r["id"]}
    assert set(rows) == {"camerajpeg"} and rows["camerajpeg"]["local"] is False  # for now
    reason = indexer.due()
    assert reason is not None and reason.startswith("1 candidate pairs wait")

    second = indexer.build_once(reason)
    assert second.local == 3 and second.local_reused == 2 and second.local_deferred == 0
    rows = {r["id"]: r for r in store.read("near_duplicates_of", id="camera") if r["id"]}
    assert set(rows) == {"camerajpeg"} and rows["camerajpeg"]["local"] is True
    assert not (indexer.due() or "").endswith("compared on their views")


def bits(n: int, start: int) -> int:
    return sum(1 << b for b in range(start, start + n))


def masked_rows(masks: dict[str, int], seed: int = 5) -> list[dict]:
    """Hash rows (detailed, colourless) of one random picture with these bits flipped in
    every kind, one per id: the pictures are as far apart as their masks."""
    rng = np.random.default_rng(seed)
    base = {k: int(rng.integers(0, 2 ** HASH_BITS[k] - 1, dtype=np.uint64)) for k in HASH_KINDS}
    return [
        {
            "id": name,
            "hash_info": 20.0,
            "hash_color": "00" * 18,
            **{
                k: format(v ^ (mask & (2 ** HASH_BITS[k] - 1)), f"0{HASH_BITS[k] // 4}x")
                for k, v in base.items()
            },
        }
        for name, mask in masks.items()
    ]


def test_groups_do_not_chain_a_like_b_like_c(fresh_graph, tmp_path):
    """A~B and B~C (8 bits apart in every kind), A and C 16 bits apart: two verified pairs,
    never one group of three."""
    _, store = fresh_graph
    _store(store, masked_rows({"A": bits(8, 0), "B": 0, "C": bits(8, 8)}))
    Indexer(store, IndexerConfig(index_dir=tmp_path / "index", trees=3)).build_once()
    assert _near(store, "B") == {"A", "C"}  # both pairs are near-duplicates ...
    assert "C" not in _near(store, "A")  # ... A and C are not ...
    groups = {name: _group(store, name) for name in "ABC"}
    assert groups["A"] != groups["C"]  # ... so they never share a group
    assert list(groups.values()).count(None) == 1  # B is in a pair with one of them


def test_search_for_an_exact_copy_ranks_the_original_first(fresh_graph, tmp_path):
    _, store = fresh_graph
    pictures = _pictures()[:4]
    rows = [_pictured(f"zz-original{i}", p) for i, p in enumerate(pictures)]
    for i, picture in enumerate(pictures):  # its copies sort before it by id
        for edit in ("jpeg", "noise", "brightness", "text", "resize"):
            edited = Image.open(io.BytesIO(variants.edited_bytes(picture, edit))).convert("RGB")
            rows.append(_pictured(f"aa-{edit}{i}", edited))
    _store(store, rows)
    Indexer(store, IndexerConfig(index_dir=tmp_path / "index", trees=3)).build_once()
    reader = IndexReader(tmp_path / "index", GraphHashSource(store))
    for i, picture in enumerate(pictures):
        buf = io.BytesIO()
        picture.convert("RGB").save(buf, "PNG")
        _, ranked = reader.rank_image(buf.getvalue(), k=6)
        assert ranked[0].id == f"zz-original{i}" and ranked[0].match
        assert ranked[0].weighted == 0 and ranked[0].reasons[0].startswith("weighted distance")
        copies = [m.id for m in ranked[1:] if m.match]
        assert all(c.startswith("aa-") and c.endswith(str(i)) for c in copies)
        # the same from a stored image's point of view
        assert reader.rank_id(f"aa-jpeg{i}", k=1)[0].id in {f"zz-original{i}", *copies}


def test_lookalike_evaluate_on_a_labelled_folder(tmp_path):
    import json
    import subprocess
    import sys

    folder = tmp_path / "pictures"
    (folder / "family-a").mkdir(parents=True)
    pictures = _pictures()[:4]
    pictures[0].convert("RGB").save(folder / "family-a" / "first.png")
    pictures[0].convert("RGB").resize((200, 200)).save(folder / "family-a" / "smaller.jpg")
    for i, picture in enumerate(pictures[1:], 1):
        picture.convert("RGB").save(folder / f"single{i}.png")
    for i in range(3):
        _flat_page(i).save(folder / f"blank{i}.png")
    # one picture under two names: left out as a family of its own, said so, not counted false
    pictures[1].convert("RGB").save(folder / "zz-twin.png")
    out = tmp_path / "scores.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "lookalike_cli.main",
            "evaluate",
            str(folder),
            "--plant",
            "--edits",
            "jpeg,mirror,border",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert (
        "left out family zz-twin: its first picture has exactly the pixels of family single1"
        in (" ".join(run.stderr.split()))
    )
    assert "by hashes and embeddings" in run.stdout and "and local features" in run.stdout
    assert "pair precision 1.0000" in run.stdout
    assert "dup_group precision 1.0000" in run.stdout
    scores = json.loads(out.read_text())
    assert scores["families"] == 7 and scores["images"] == 8 + 7 * 3
    assert set(scores["recall_by_edit"]) == {"given", "jpeg", "mirror", "border"}
    assert scores["recall_by_edit"]["given"] == {"found": 1, "of": 1, "recall": 1.0}
    assert scores["recall_by_edit"]["mirror"]["found"] >= 4  # the paintings' mirrors
    assert sorted(scores["low_information_families"]) == ["blank0", "blank1", "blank2"]
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "lookalike_cli.main",
            "evaluate",
            str(folder),
            "--plant",
            "--edits",
            "sepia",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "unknown edits sepia" in bad.stderr
