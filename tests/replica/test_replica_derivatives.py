"""The derivative cache: pictures stored on disk are the rendered bytes, pre-rendered thumbnails
are what the crawler's requests hit, writers in threads and processes share one size limit,
faults still go on top, and a directory that cannot be used is refused at start-up."""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import threading
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from PIL import Image

from lookalike.catalogue import iiif_thumbnail_url
from lookalike.settings import load_settings
from lookalike_cli.main import cli
from services.replica import iiif, routes_iiif
from services.replica.app import create_app
from services.replica.collection import Collection
from services.replica.derivatives import (
    MARKER,
    DerivativeCache,
    DerivativeCacheError,
    collection_namespace,
    prerender,
    thumbnail_key,
    thumbnail_keys,
)
from services.replica.scale import build_scale_collection
from services.replica.server import run_replica

NS = {"collection": "test", "render_version": 0}


@pytest.fixture(scope="module")
def scale(scale_dir: Path) -> Collection:
    return Collection.load(scale_dir)


def _rendered(coll: Collection, key) -> bytes:
    asset, region, size, rotation, quality_format = key
    source = coll.image_source(asset)
    return iiif.render(
        source, iiif.parse_image_request(region, size, rotation, quality_format, source)
    )


def _stored_files(directory: Path) -> list[Path]:
    return [p for p in directory.glob("??/*") if p.is_file()]


# -- byte identity ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["scale", "demo"])
def test_prerendered_bytes_are_the_rendered_bytes(which, scale, demo, tmp_path) -> None:
    coll = scale if which == "scale" else demo  # generated pictures, stored files
    ids = coll.ids[:6]
    keys = thumbnail_keys(coll, ids, sizes=(400, "200,"))
    report = prerender(coll, tmp_path / "d", keys, processes=1)
    assert (report.requested, report.stored, report.present) == (12, 12, 0)
    with DerivativeCache(tmp_path / "d", namespace=collection_namespace(coll)) as cache:
        for key in keys:
            assert cache.get(key) == _rendered(coll, key)
        # The crawler's recipe is what the collection calls the thumbnail.
        assert cache.get(thumbnail_key(coll.asset_id(ids[0]), 400)) == coll.thumbnail_bytes(
            coll.asset_id(ids[0]), "!400,400"
        )
        assert cache.usage_bytes == sum(p.stat().st_size for p in _stored_files(tmp_path / "d"))


def test_pictures_stored_on_request_are_served_byte_identical_after_a_restart(
    scale, tmp_path
) -> None:
    asset = scale.asset_id(scale.ids[3])
    paths = [
        f"/image/{asset}/square/200,/90/gray.png",
        f"/thumbs/{asset}/full/!150,150/0/default.jpg",
        f"/image/{asset}/pct:10,10,50,50/pct:50/!0/bitonal.gif",
    ]
    with run_replica(scale, derivatives_dir=tmp_path / "d") as rep:
        first = [requests.get(rep.base_url + p, timeout=10) for p in paths]
        pictures = rep.stats()["pictures"]
    assert all(r.status_code == 200 for r in first)
    assert pictures["rendered"] == pictures["stored"] == 3 and pictures["derivative_hits"] == 0
    with run_replica(scale, derivatives_dir=tmp_path / "d") as rep:
        again = [requests.get(rep.base_url + p, timeout=10) for p in paths]
        pictures = rep.stats()["pictures"]
    assert pictures["derivative_hits"] == 3 and pictures["rendered"] == 0
    for path, a, b in zip(paths, first, again, strict=True):
        assert a.content == b.content
        assert a.headers["Content-Type"] == b.headers["Content-Type"]
        _, asset_, region, size, rotation, qf = path.strip("/").split("/")
        assert b.content == _rendered(scale, (asset_, region, size, rotation, qf))


# -- the crawler's requests hit ------------------------------------------------------------


def test_prerendered_thumbnails_are_what_the_crawler_requests(scale, tmp_path) -> None:
    size = load_settings().thumbnail_size
    ids = scale.ids[100:140]
    keys = thumbnail_keys(scale, ids, sizes=(size,))
    first = prerender(scale, tmp_path / "d", keys, processes=2)  # >= 32 keys: the pool
    assert (first.stored, first.present, first.not_stored_full) == (40, 0, 0)
    second = prerender(scale, tmp_path / "d", keys, processes=2)
    assert (second.stored, second.present) == (0, 40)  # reused: nothing rendered again
    with run_replica(scale, derivatives_dir=tmp_path / "d") as rep:
        bodies = []
        for image_id in ids:
            doc = requests.get(f"{rep.catalogue_url}/images/{image_id}", timeout=10).json()
            # The URL the crawler builds (CatalogueClient.thumbnail_url uses this recipe).
            url = iiif_thumbnail_url(doc["thumbnail"]["url"], size)
            resp = requests.get(url, timeout=10)
            assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/jpeg"
            bodies.append(resp.content)
        pictures = rep.stats()["pictures"]
        rep.reset_stats()
        assert rep.stats()["pictures"]["derivative_hits"] == 0
    assert pictures["derivative_hits"] == 40
    assert pictures["rendered"] == pictures["stored"] == pictures["memory_hits"] == 0
    assert bodies[0] == scale.thumbnail_bytes(scale.asset_id(ids[0]), f"!{size},{size}")


# -- faults ----------------------------------------------------------------------------------


def test_faults_apply_over_cached_bytes_and_leave_the_cache_clean(scale, tmp_path) -> None:
    ids = scale.ids[:4]
    keys = thumbnail_keys(scale, ids, sizes=(400,))
    prerender(scale, tmp_path / "d", keys, processes=1)
    with run_replica(scale, derivatives_dir=tmp_path / "d") as rep:
        for key in keys:
            url = f"{rep.base_url}/image/{key[0]}/full/!400,400/0/default.jpg"
            corrupt = requests.get(url, params={"faults": "corrupt_thumb=1"}, timeout=10)
            html = requests.get(url, params={"faults": "nonimage_thumb=1"}, timeout=10)
            clean = requests.get(url, timeout=10)
            assert corrupt.headers["Content-Type"] == "image/jpeg"
            assert corrupt.content == routes_iiif.corrupt(clean.content) != clean.content
            with pytest.raises(OSError):
                Image.open(io.BytesIO(corrupt.content)).load()
            assert html.headers["Content-Type"].startswith("text/html")
            assert clean.content == _rendered(scale, key)
        stats = rep.stats()
    assert stats["faults"] == {"corrupt_thumb": 4, "nonimage_thumb": 4}
    assert stats["pictures"]["derivative_hits"] + stats["pictures"]["memory_hits"] == 12
    assert stats["pictures"]["rendered"] == 0
    with DerivativeCache(tmp_path / "d", namespace=collection_namespace(scale)) as cache:
        assert all(cache.get(k) == _rendered(scale, k) for k in keys)


# -- concurrency and the size limit ---------------------------------------------------------


def _payload(key) -> bytes:
    """Deterministic bytes per key, 1000 of them: a torn or mixed write would show."""
    seed = sum(map(ord, "".join(key)))
    return bytes((seed + i) % 251 for i in range(1000))


def _writer(directory: str, worker: int, max_mb: float, threads: int) -> None:
    cache = DerivativeCache(directory, namespace=NS, max_mb=max_mb)

    def run(t: int) -> None:
        for i in range(60):
            # Half the keys are shared by every writer (races on the same file), half own.
            owner = "shared" if i % 2 else f"w{worker}t{t}"
            key = (f"{owner}-{i}", "full", "!400,400", "0", "default.jpg")
            cache.put(key, _payload(key))
            got = cache.get(key)
            assert got is None or got == _payload(key)

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    cache.close()


@pytest.mark.parametrize("max_mb", [64.0, 0.05])
def test_concurrent_writers_in_processes_and_threads(tmp_path, max_mb) -> None:
    directory = tmp_path / "d"
    DerivativeCache(directory, namespace=NS, max_mb=max_mb).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(directory), w, max_mb, 3)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    files = _stored_files(directory)
    assert not [p for p in directory.rglob("*.tmp")]
    with DerivativeCache(directory, namespace=NS, max_mb=max_mb) as cache:
        for path in files:
            assert len(path.read_bytes()) == 1000
        expected_keys = {
            (f"shared-{i}" if i % 2 else f"w{w}t{t}-{i}")
            for w in range(3)
            for t in range(3)
            for i in range(60)
        }
        stored = {
            k
            for k in expected_keys
            if cache.get((k, "full", "!400,400", "0", "default.jpg")) is not None
        }
        for k in stored:
            key = (k, "full", "!400,400", "0", "default.jpg")
            assert cache.get(key) == _payload(key)
        # The shared byte count is the truth on disk, and holds the limit across processes.
        assert cache.usage_bytes == 1000 * len(files) == 1000 * len(stored)
    if max_mb >= 1:
        assert len(stored) == len(expected_keys) == 30 + 9 * 30
    else:
        assert len(stored) == int(0.05 * 2**20) // 1000  # exactly as many as fit: 52


def test_a_full_cache_stops_storing_and_the_server_still_serves(scale, tmp_path) -> None:
    keys = thumbnail_keys(scale, scale.ids[:40], sizes=(400,))
    sizes = [len(_rendered(scale, k)) for k in keys]
    limit_mb = (sum(sizes[:10]) + sizes[10] // 2) / 2**20  # room for 10 thumbnails, not 11
    report = prerender(scale, tmp_path / "d", keys, processes=1, max_mb=limit_mb)
    assert (report.stored, report.not_stored_full) == (10, 30)  # stops at the first refusal
    kept = sorted(p.read_bytes() for p in _stored_files(tmp_path / "d"))
    with run_replica(scale, derivatives_dir=tmp_path / "d", derivatives_mb=limit_mb) as rep:
        for key in keys[5:15]:
            resp = requests.get(
                f"{rep.base_url}/image/{key[0]}/full/!400,400/0/default.jpg", timeout=10
            )
            assert resp.content == _rendered(scale, key)
        pictures = rep.stats()["pictures"]
    assert pictures["derivative_hits"] == 5
    assert pictures["rendered"] == pictures["not_stored_full"] == 5 and pictures["stored"] == 0
    # Nothing was evicted: the pre-rendered files are all still there, unchanged.
    assert sorted(p.read_bytes() for p in _stored_files(tmp_path / "d")) == kept


# -- the directory -------------------------------------------------------------------------


def test_a_directory_that_cannot_be_used_is_refused_at_start_up(scale, tmp_path) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(DerivativeCacheError, match=r"a-file/d.* cannot be created"):
        create_app(scale, derivatives_dir=afile / "d")
    with (
        pytest.raises(DerivativeCacheError, match="cannot be created"),
        run_replica(scale, derivatives_dir=afile / "d"),
    ):
        pass
    # A folder of someone else's files is not emptied or written to.
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(DerivativeCacheError, match=f"{MARKER}.*refusing"):
        DerivativeCache(foreign, namespace=NS)
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"]
    with pytest.raises(DerivativeCacheError, match="must be > 0 MB"):
        DerivativeCache(tmp_path / "z", namespace=NS, max_mb=0)
    # The CLI says so and exits 1.
    result = CliRunner().invoke(
        cli,
        ["replica", "serve", "--collection", str(scale.path), "--derivatives", str(afile / "d")],
    )
    assert result.exit_code == 1 and "cannot be created" in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory anyway")
def test_an_unwritable_directory_is_refused(tmp_path) -> None:
    directory = tmp_path / "ro"
    DerivativeCache(directory, namespace=NS).close()
    directory.chmod(0o500)
    try:
        with pytest.raises(DerivativeCacheError, match="not writable"):
            DerivativeCache(directory, namespace=NS)
    finally:
        directory.chmod(0o700)


def test_another_namespace_empties_the_cache(tmp_path) -> None:
    key = ("A", "full", "!400,400", "0", "default.jpg")
    with DerivativeCache(tmp_path / "d", namespace=NS) as cache:
        assert cache.put(key, b"old bytes") == "stored"
        assert cache.put(key, b"old bytes") == "present"
    with DerivativeCache(tmp_path / "d", namespace={**NS, "pillow": "99"}) as cache:
        assert cache.get(key) is None and cache.usage_bytes == 0
        assert _stored_files(tmp_path / "d") == []
        assert cache.counts() == {"misses": 1}


def test_cli_prerender(tmp_path) -> None:
    small = build_scale_collection(tmp_path / "c", 120, seed=5)
    runner = CliRunner()
    args = [
        "replica",
        "prerender",
        "--collection",
        str(small),
        "--derivatives",
        str(tmp_path / "d"),
        "--size",
        "100",
        "--size",
        "200",
        "--processes",
        "2",
    ]
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "240 rendered, 0 already there, 0 left out" in result.output
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert "0 rendered, 240 already there" in result.output
    assert len(_stored_files(tmp_path / "d")) == 240
    # A cache too small for them: what fits is stored, the rest reported, exit status 1.
    args[5] = str(tmp_path / "small")
    result = runner.invoke(cli, [*args, "--derivatives-mb", "0.01"], catch_exceptions=False)
    assert result.exit_code == 1
    stored = len(_stored_files(tmp_path / "small"))
    assert 0 < stored < 240 and f"{stored} rendered" in result.output
    assert f"{240 - stored} left out (cache full)" in result.output
