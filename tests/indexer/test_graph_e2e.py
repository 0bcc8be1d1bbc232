"""End to end through the real Bolt server: build from the graph, fresh hashes, near-duplicate
relationships and groups written back, and the CLI commands as separate processes."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance, ImageOps

from lookalike.graph import GraphStore
from lookalike.hashing import algorithm_version, hash_image
from lookalike_cli.main import child_command
from services.indexer import generations as gens
from services.indexer.graph_io import GraphHashSource, read_all_hashes
from services.indexer.reader import IndexReader, Match
from services.indexer.service import Indexer, IndexerConfig
from tests.indexer.test_core import _pictures


def _jpeg(picture: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    picture.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def _store_pictures(store: GraphStore, pictures: dict[str, Image.Image], at: int) -> None:
    store.upsert_images([{"id": i, "title": f"picture {i}"} for i in pictures])
    rows = [
        {
            "id": i,
            **hash_image(p).node_properties(),
            "hash_version": algorithm_version(),
            "thumbnail": f"http://example.invalid/{i}.jpg",
            "hashed_at": at,
        }
        for i, p in pictures.items()
    ]
    store.write("set_hashes", rows)


@pytest.fixture
def collection() -> dict[str, Image.Image]:
    pics = _pictures()
    out = {f"orig{i:02d}": p for i, p in enumerate(pics[:8])}
    out["copy00small"] = _decoded(_jpeg(pics[0].resize((pics[0].width // 2, pics[0].height // 2))))
    out["copy00flip"] = ImageOps.mirror(pics[0])
    out["copy01jpeg"] = _decoded(_jpeg(pics[1], quality=25))
    return out


def _stored_duplicates(store: GraphStore, image_id: str) -> dict[str, tuple[str, str, int, bool]]:
    """One verified relationship per pair: other id -> (group, best kind, its distance,
    mirrored)."""
    rows = store.read("near_duplicates_of", id=image_id)
    assert len({r["id"] for r in rows}) == len(rows)
    return {r["id"]: (r["group"], r["kind"], r["distance"], r["mirrored"]) for r in rows if r["id"]}


def test_build_from_graph_fresh_hashes_and_near_duplicate_groups(fresh_graph, tmp_path, collection):
    _, store = fresh_graph
    t0 = int(time.time() * 1000) - 60_000
    _store_pictures(store, collection, t0)
    store.upsert_images([{"id": "unhashed", "title": "no thumbnail yet"}])
    good = hash_image(collection["orig07"]).as_dict()
    store.upsert_images(
        [{"id": "corrupt", "phash": "not-a-hash", "dhash": good["dhash"], "hashed_at": t0}]
    )

    table = read_all_hashes(store)
    assert sorted(table.ids.tolist()) == sorted([*collection, "corrupt"])
    assert table.rejected == ["corrupt: phash hash 'not-a-hash' is not 16 hex digits"]

    config = IndexerConfig(index_dir=tmp_path / "index", trees=5, min_new=3, period_s=3600)
    worker = Indexer(store, config)
    assert worker.due() == "no index yet"
    report = worker.build_once("test")
    assert report.build.number == 1 and report.build.images == len(collection) + 1
    assert report.joined["phash"] == -1  # the first build joins everything
    assert worker.due() is None

    dups = _stored_duplicates(store, "orig00")
    assert dups["copy00small"][2] <= 4
    group, _, _, mirrored = dups["copy00flip"]
    assert mirrored and group == "copy00flip"  # the smallest id of the group
    assert "copy01jpeg" in _stored_duplicates(store, "orig01")
    assert not _stored_duplicates(store, "orig05")
    meta = gens.read_meta(report.build.path)
    assert meta["rejected"] == ["corrupt: phash hash 'not-a-hash' is not 16 hex digits"]

    # a picture hashed after the build is found at once, before any rebuild
    reader = IndexReader(
        config.index_dir, GraphHashSource(store), delta_ttl=0.0, check_interval=0.0
    )
    # the corrupt phash is left out; the same image's good dhash is searchable
    assert reader.hashes_of("corrupt") == {"dhash": good["dhash"]}
    assert Match("corrupt", 0) in reader.within("dhash", hash=good["dhash"], radius=0)
    brighter = ImageEnhance.Brightness(collection["orig03"]).enhance(1.2)
    assert "late" not in [m.id for m in reader.nearest("phash", image_id="orig03", k=3)]
    _store_pictures(store, {"late": brighter}, int(time.time() * 1000))
    found = reader.nearest("phash", image_id="orig03", k=3, max_distance=10)
    assert found[0].id == "late" and found[0].distance <= 6
    assert reader.search_image(_jpeg(brighter), kinds=("dhash",), k=1)["dhash"][0] == Match(
        "late", 0
    )
    assert worker.due() is None  # 1 new hash < min_new
    built_at = gens.read_meta(gens.current_path(config.index_dir))["built_at"]
    assert worker.due(now_ms=built_at + 3_600_001) == "1 new hashes and 3600s passed"
    gens.request_rebuild(config.index_dir)
    assert worker.due() == "requested"

    # re-hash a copy into something else: its pair and group go on the next build
    _store_pictures(
        store, {"copy01jpeg": collection["orig06"].rotate(90, expand=True)}, int(time.time() * 1000)
    )
    report = worker.build_once("test again")
    assert report.build.number == 2
    # pairs were updated, not joined again: only "late" and the re-hashed copy moved
    assert report.joined["phash"] == 2 and report.joined["dhash"] == 2
    assert "late" in _stored_duplicates(store, "orig03")
    assert "copy01jpeg" not in _stored_duplicates(store, "orig01")
    rows = store.read("near_duplicates_of", id="orig01")
    assert rows[0]["group"] is None  # its only pair is gone, so is its group mark
    assert reader.generation.number == 2


def test_cli_duplicates_and_search_through_the_real_stack(fresh_graph, tmp_path, collection):
    local, store = fresh_graph
    _store_pictures(store, collection, int(time.time() * 1000))
    conn = local.graph()
    env = {
        **os.environ,
        "LOOKALIKE_STATE_DIR": str(tmp_path / "state"),
        "NEO4J_URI": conn.uri,
        "NEO4J_USER": conn.user,
        "NEO4J_PASSWORD": conn.password,
        "NEO4J_DATABASE": conn.database or "",
    }

    def lookalike(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            child_command(*args),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    # before any build, every hash is scanned exactly from the graph
    early = lookalike("duplicates", "orig00")
    assert early.returncode == 0, early.stderr
    assert "lookalike indexer --once" in early.stderr and "copy00small" in early.stdout

    built = lookalike("indexer", "--once")
    assert built.returncode == 0, built.stderr
    assert "gen-000001" in built.stdout and "near-duplicate pairs" in built.stdout

    out = lookalike("duplicates", "orig00", "--kind", "ahash")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "near-duplicates of orig00 by ahash" in lines[0]
    flip = next(line for line in lines if "copy00flip" in line)
    assert "yes" in flip and "picture copy00flip" in flip

    unknown = lookalike("duplicates", "nope")
    assert unknown.returncode == 1 and "'nope' has no hashes" in unknown.stderr

    picture = tmp_path / "query.jpg"
    picture.write_bytes(_jpeg(collection["orig02"].resize((300, 300)), quality=60))
    found = lookalike("search", str(picture), "-k", "3")
    assert found.returncode == 0, found.stderr
    first = found.stdout.splitlines()[2]
    assert "orig02" in first and "picture orig02" in first

    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"GIF89a not really")
    bad = lookalike("search", str(junk))
    assert bad.returncode == 1 and "not a decodable image" in bad.stderr
    assert Path(tmp_path / "state" / "index" / "CURRENT").exists()


def test_indexer_loop_rebuilds_on_new_hashes_and_on_request(fresh_graph, tmp_path, collection):
    """`lookalike indexer` as a real long-running process, stopped with SIGTERM."""
    local, store = fresh_graph
    _store_pictures(store, dict(list(collection.items())[:4]), int(time.time() * 1000))
    conn = local.graph()
    index_dir = tmp_path / "state" / "index"
    env = {
        **os.environ,
        "LOOKALIKE_STATE_DIR": str(tmp_path / "state"),
        "NEO4J_URI": conn.uri,
        "NEO4J_USER": conn.user,
        "NEO4J_PASSWORD": conn.password,
        "NEO4J_DATABASE": conn.database or "",
        "LOOKALIKE_INDEX_REBUILD_MIN_NEW": "3",
    }
    command = child_command("indexer")
    proc = subprocess.Popen(
        [*command, "--poll", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()

    def wait_for_generation(number: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, "".join(output)
            if gens.current_name(index_dir) == gens.gen_name(number):
                return
            time.sleep(0.1)
        raise AssertionError(f"no generation {number} within 60s")

    try:
        wait_for_generation(1)  # no index yet -> built at once
        _store_pictures(store, dict(list(collection.items())[4:6]), int(time.time() * 1000))
        # The indexer saw the 2 new hashes and decided that 2 < 3 is no reason to rebuild.
        deadline = time.monotonic() + 60
        while not any("2 new hashes since the current generation" in line for line in output):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(output)
            time.sleep(0.1)
        assert gens.current_name(index_dir) == "gen-000001"
        _store_pictures(store, dict(list(collection.items())[6:7]), int(time.time() * 1000))
        wait_for_generation(2)  # 3 new hashes
        assert gens.read_meta(index_dir / "gen-000002")["images"] == 7
        requested = subprocess.run(
            [*command, "--request"], env=env, capture_output=True, text=True, timeout=60
        )
        assert requested.returncode == 0, requested.stderr
        wait_for_generation(3)
        assert gens.read_meta(index_dir / "gen-000003")["reason"] == "requested"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    assert proc.returncode == 0, "".join(output)
    assert any("3 new hashes" in line for line in output)
