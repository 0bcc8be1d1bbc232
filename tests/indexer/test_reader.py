"""The reader over real generation folders: exact answers, fresh hashes, atomic switches.

The hash source here is in memory (the graph-backed one is tested end to end in
test_graph_e2e.py); everything else is the real thing: Annoy files, mmap, threads.
"""

from __future__ import annotations

import io
import logging
import threading
import time

import numpy as np
import pytest
from PIL import ImageOps

from lookalike.hashing import hash_image
from services.indexer import popscan
from services.indexer import reader as reader_module
from services.indexer.bits import ExactScanner, mirror_value, parse_hex, to_hex
from services.indexer.build import build_generation
from services.indexer.reader import NEAR_RADIUS, IndexReader, Match, UnknownImage
from services.indexer.table import HashTable
from tests.indexer.helpers import MemorySource, synthetic_table
from tests.indexer.test_core import _pictures


@pytest.fixture(scope="module")
def table() -> HashTable:
    return synthetic_table(6000, seed=7, variants=0.05)


def _exact(table: HashTable, kind: str, q: int, radius: int) -> list[tuple[int, str]]:
    rows, values = table.column(kind)
    pos, d = ExactScanner(values).within(q, radius)
    return sorted(zip(d.tolist(), table.ids[rows[pos]].tolist(), strict=True))


@pytest.mark.parametrize(
    ("exact_scan_max", "annoy_min_items"),
    [(0, 0), (0, 100_000), (100_000, 100_000)],
    ids=["multi-index+annoy", "multi-index+scan", "scan"],
)
def test_within_and_nearest_are_exact_near_duplicates(
    tmp_path, table, exact_scan_max, annoy_min_items
):
    build_generation(tmp_path, table, trees=5, annoy_min_items=annoy_min_items)
    reader = IndexReader(tmp_path, MemorySource(), exact_scan_max=exact_scan_max)
    annoy = annoy_min_items < len(table)
    assert all(
        (tmp_path / reader.generation.name / f"{k}.ann").exists() == annoy for k in table.kinds
    )
    n_base = 6000
    for kind in ("phash", "dhash"):
        k = table.kinds.index(kind)
        for row in range(n_base, n_base + 80):  # the planted variants
            q = int(table.values[row, k])
            for radius in (6, 10, 14):
                got = reader.within(kind, hash=to_hex(kind, q), radius=radius)
                assert [(m.distance, m.id) for m in got] == _exact(table, kind, q, radius)
            near = reader.nearest(kind, hash=to_hex(kind, q), k=5)
            want = _exact(table, kind, q, 64)[:5]
            assert len(near) == 5
            assert Match(str(table.ids[row]), 0) in [m for m in near if m.distance == 0]
            if not annoy:  # an exact scan: the true 5 nearest, ties by id
                assert [(m.distance, m.id) for m in near] == want
                continue
            # exact up to NEAR_RADIUS; beyond it Annoy's candidates can only be farther
            assert [m.distance for m in near if m.distance <= NEAR_RADIUS] == [
                d for d, _ in want if d <= NEAR_RADIUS
            ]
            assert all(m.distance >= d for m, (d, _) in zip(near, want, strict=True))


def test_nearest_by_image_id_leaves_the_image_out(tmp_path, table):
    build_generation(tmp_path, table, trees=5)
    reader = IndexReader(tmp_path)
    image = str(table.ids[6001])
    got = reader.nearest("phash", image_id=image, k=3)
    assert image not in [m.id for m in got] and len(got) == 3
    with pytest.raises(UnknownImage, match="'nope'"):
        reader.nearest("phash", image_id="nope")
    with pytest.raises(ValueError, match="exactly one of"):
        reader.nearest("phash", hash="00" * 8, image_id=image)
    with pytest.raises(ValueError, match="not 16 hex digits"):
        reader.within("phash", hash="123", radius=3)


def test_image_hashed_after_the_build_is_found_before_the_next(tmp_path, table):
    build_generation(tmp_path, table, trees=5)
    source = MemorySource()
    reader = IndexReader(tmp_path, source, delta_ttl=0.0, exact_scan_max=0)
    query = int(table.values[100, 0])
    close = query ^ 0b111  # 3 bits away from image 100
    assert "fresh" not in [
        m.id for m in reader.within("phash", hash=to_hex("phash", query), radius=5)
    ]
    source.add(
        "fresh", hashed_at=2_000, phash=to_hex("phash", close), dhash="00" * 8, ahash="00" * 8
    )
    got = reader.within("phash", hash=to_hex("phash", query), radius=5)
    assert Match("fresh", 3) in got
    assert reader.nearest("phash", image_id="fresh", k=1)[0] == Match(str(table.ids[100]), 3)
    assert reader.hashes_of("fresh")["phash"] == to_hex("phash", close)

    # re-hashed image: its new hash replaces the generation's
    moved = str(table.ids[100])
    far = query ^ ((1 << 64) - 1)
    source.add(moved, hashed_at=3_000, phash=to_hex("phash", far), dhash="00" * 8, ahash="00" * 8)
    got = reader.within("phash", hash=to_hex("phash", query), radius=5)
    assert moved not in [m.id for m in got]
    assert reader.within("phash", hash=to_hex("phash", far), radius=0)[0].id == moved


def test_recent_hashes_are_cached_briefly(tmp_path, table):
    build_generation(tmp_path, table, trees=5)
    source = MemorySource()
    reader = IndexReader(tmp_path, source, delta_ttl=60.0)
    for _ in range(50):
        reader.within("phash", hash="00" * 8, radius=4)
    assert source.calls == 1


def test_mirror_search_finds_a_flipped_copy(tmp_path):
    pictures = _pictures()
    ids, rows = [], []
    for i, picture in enumerate(pictures):
        ids.append(f"pic{i}")
        rows.append({"id": f"pic{i}", **hash_image(picture).as_dict(), "hashed_at": 1})
    build_generation(tmp_path, HashTable.from_rows(rows), trees=5)
    reader = IndexReader(tmp_path)
    flipped = ImageOps.mirror(pictures[1])
    buf = io.BytesIO()
    flipped.save(buf, "PNG")

    plain = reader.search_image(
        buf.getvalue(), kinds=("phash", "dhash", "ahash"), k=3, mirror=False
    )
    assert all(m.id != "pic1" or m.distance > 10 for ms in plain.values() for m in ms)
    found = reader.search_image(buf.getvalue(), kinds=("phash", "dhash", "ahash"), k=3)
    for kind, matches in found.items():
        assert matches[0].id == "pic1" and matches[0].mirrored, kind
        assert matches[0].distance == 0, kind

    # from stored hashes alone, the derived mirror finds it too
    ahash_flipped = hash_image(flipped).ahash
    got = reader.nearest("ahash", hash=ahash_flipped, k=1, mirror=True)
    assert got == [Match("pic1", 0, True)]
    assert mirror_value("ahash", parse_hex("ahash", ahash_flipped)) == int(
        hash_image(pictures[1]).ahash, 16
    )

    with pytest.raises(ValueError, match="not a decodable image"):
        reader.search_image(b"not an image")


def test_reader_switches_to_a_new_generation(tmp_path, table):
    first = synthetic_table(500, seed=11)
    build_generation(tmp_path, first, trees=3)
    reader = IndexReader(tmp_path, check_interval=0.0)
    assert reader.generation.number == 1 and reader.generation.images == len(first)
    build_generation(tmp_path, table, trees=3)
    assert reader.generation.number == 2
    q = int(table.values[10, 0])
    assert reader.within("phash", hash=to_hex("phash", q), radius=0)[0].id == str(table.ids[10])


def test_no_generation_yet_serves_recent_hashes(tmp_path):
    source = MemorySource()
    source.add("only", hashed_at=5, phash="ff" * 8, dhash="00" * 8, ahash="00" * 8)
    reader = IndexReader(tmp_path / "empty", source)
    assert reader.generation is None
    assert reader.nearest("phash", hash="ff" * 7 + "fe", k=3) == [Match("only", 1)]


def test_rebuilds_under_concurrent_queries_never_error_or_return_partial_results(tmp_path):
    """Readers hammer the index while a builder publishes (and cleans up) generation after
    generation. Every generation holds the same base images plus unrelated new ones, so
    every answer must equal the exact one, whichever generation served it."""
    base = synthetic_table(3000, seed=21, variants=0.05)
    rng = np.random.default_rng(5)
    queries = [
        (kind, int(base.values[row, k]))
        for row in rng.integers(3000, len(base), 20).tolist()
        for k, kind in enumerate(base.kinds)
    ]
    expected = {(kind, q): _exact(base, kind, q, 10) for kind, q in queries}

    def generation_table(g: int) -> HashTable:
        """The base images plus 300 others (ids new to this generation) that are farther
        than 10 bits from every query."""
        extra = (
            np.random.default_rng(100 + g)
            .integers(0, 2**63, (300, len(base.kinds)), dtype=np.int64)
            .astype(np.uint64)
        )
        keep = np.ones(len(extra), bool)
        for k, kind in enumerate(base.kinds):
            for qkind, q in queries:
                if qkind == kind:
                    keep &= np.bitwise_count(extra[:, k] ^ np.uint64(q)) > 10
        extra = extra[keep]
        return HashTable.from_arrays(
            [*base.ids.tolist(), *(f"g{g}x{i}" for i in range(len(extra)))],
            {
                kind: np.concatenate([base.values[:, k], extra[:, k]])
                for k, kind in enumerate(base.kinds)
            },
        )

    tables = [generation_table(g) for g in range(6)]
    for kind, q in queries:
        for t in tables[1:]:
            assert _exact(t, kind, q, 10) == expected[(kind, q)]

    build_generation(tmp_path, tables[0], trees=3)
    reader = IndexReader(
        tmp_path, MemorySource(), check_interval=0.0, delta_ttl=0.0, exact_scan_max=0
    )
    errors: list[BaseException] = []
    answered = [0]
    seen_generations: set[int] = set()
    stop = threading.Event()

    def query_loop(offset: int) -> None:
        i = offset
        while not stop.is_set():
            kind, q = queries[i % len(queries)]
            i += 1
            try:
                got = reader.within(kind, hash=to_hex(kind, q), radius=10)
                near = reader.nearest(kind, hash=to_hex(kind, q), k=3)
                gen = reader.generation
                if gen:
                    seen_generations.add(gen.number)
                assert [(m.distance, m.id) for m in got] == expected[(kind, q)]
                assert [(m.distance, m.id) for m in near if m.distance <= 10] == expected[
                    (kind, q)
                ][:3]
                assert len(near) == 3
                answered[0] += 1
            except BaseException as exc:
                errors.append(exc)
                stop.set()

    threads = [threading.Thread(target=query_loop, args=(n * 7,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        for t in tables[1:]:
            build_generation(tmp_path, t, trees=3, keep=2)
            time.sleep(0.05)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and 6 not in seen_generations and not errors:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert answered[0] > 50
    assert 6 in seen_generations and len(seen_generations) >= 2


@pytest.mark.parametrize("exact_scan_max", [0, 100_000], ids=["multi-index", "scan"])
def test_the_generation_alone_path_answers_as_the_general_one(tmp_path, table, exact_scan_max):
    """One direct query without recent hashes skips the merging of matches (within, nearest);
    the answers are the general path's, and the general path with a mirror or recent hashes
    agrees with the generation alone where they should."""
    build_generation(tmp_path / "gen", table, trees=5)
    reader = IndexReader(tmp_path / "gen", MemorySource(), exact_scan_max=exact_scan_max)
    gen, delta = reader._gen, reader._recent(reader._gen)
    assert gen is not None and delta is not None and not delta.ids
    for kind in ("phash", "dhash"):
        k = table.kinds.index(kind)
        for row in (*range(6000, 6040), 0, 17):
            q = int(table.values[row, k])
            image = str(table.ids[row])
            for radius in (0, 6, 10, 14):
                fast = reader.within(kind, hash=to_hex(kind, q), radius=radius)
                assert fast == reader._within_merged(gen, delta, kind, [(q, False)], radius, None)
                assert reader.within(kind, image_id=image, radius=radius) == reader._within_merged(
                    gen, delta, kind, [(q, False)], radius, image
                )
            for n, max_distance in ((1, None), (5, None), (12, 14)):
                fast = reader.nearest(kind, hash=to_hex(kind, q), k=n, max_distance=max_distance)
                assert fast == reader._nearest_merged(
                    gen, delta, kind, [(q, False)], n, None, max_distance
                )
                assert reader.nearest(kind, image_id=image, k=n) == reader._nearest_merged(
                    gen, delta, kind, [(q, False)], n, image, None
                )
            # with the mirror: the best of the two fast answers, direct before mirrored
            m = mirror_value(kind, q)
            best: dict[str, tuple[int, bool]] = {}
            for value, mirrored in ((q, False), (m, True)):
                for match in reader.within(kind, hash=to_hex(kind, value), radius=10):
                    best[match.id] = min(best.get(match.id, (99, True)), (match.distance, mirrored))
            assert reader.within(kind, hash=to_hex(kind, q), radius=10, mirror=True) == [
                Match(i, d, mr) for d, mr, i in sorted((d, mr, i) for i, (d, mr) in best.items())
            ]

    # recent hashes (new images, and re-hashed ones replacing theirs) through the general path
    # answer as the generation alone does once they are built into it
    source = MemorySource(kinds=table.kinds)
    later = dict(zip(table.ids.tolist(), table.values.tolist(), strict=True))
    for i in range(6000, 6030):
        image = str(table.ids[i]) if i % 2 else f"new{i}"
        moved = [v ^ 0b1011 for v in table.values[i].tolist()]
        source.add(
            image,
            hashed_at=10**13,
            **{kd: to_hex(kd, v) for kd, v in zip(table.kinds, moved, strict=True)},
        )
        later[image] = moved
    with_delta = IndexReader(tmp_path / "gen", source, exact_scan_max=exact_scan_max)
    merged = HashTable.from_arrays(
        later,
        {
            kd: np.array([v[j] for v in later.values()], dtype=np.uint64)
            for j, kd in enumerate(table.kinds)
        },
    )
    build_generation(tmp_path / "all", merged, trees=5, annoy_min_items=10**6)
    built = IndexReader(tmp_path / "all", exact_scan_max=exact_scan_max)
    for kind in ("phash", "dhash"):
        k = table.kinds.index(kind)
        for row in range(5990, 6040):
            h = to_hex(kind, int(table.values[row, k]) ^ 0b1)
            assert with_delta.within(kind, hash=h, radius=10) == built.within(
                kind, hash=h, radius=10
            )
            assert with_delta.nearest(kind, hash=h, k=5) == built.nearest(kind, hash=h, k=5)


@pytest.mark.parametrize("exact_scan_max", [0, 100_000], ids=["multi-index", "scan"])
def test_the_generation_alone_path_at_the_edges(tmp_path, table, exact_scan_max):
    """The fast path against the general one and the truth where a scan's buffers and
    orders could go wrong: an empty generation, a few images (fewer than a word of
    distances), a kind some images lack (items are not rows), radius 0 and the full 64
    bits, k beyond the collection, by image id, with the mirror, and with recent hashes."""
    build_generation(tmp_path / "empty", HashTable.empty(table.kinds), trees=5)
    empty = IndexReader(tmp_path / "empty", MemorySource())
    assert empty.generation is not None and empty.generation.images == 0
    assert empty.within("phash", hash="0" * 16, radius=64) == []
    assert empty.nearest("phash", hash="0" * 16, k=5) == []

    rows = []
    for i in range(6000, 6013):  # planted variants and their originals: ties and near pairs
        row = {"id": str(table.ids[i]), "hashed_at": 1_000}
        for j, kind in enumerate(table.kinds):
            if kind != "dhash" or i % 3:
                row[kind] = to_hex(kind, int(table.values[i, j]))
        rows.append(row)
    few = HashTable.from_rows(rows, table.kinds)
    build_generation(tmp_path / "few", few, trees=5)
    source = MemorySource(kinds=table.kinds)
    reader = IndexReader(tmp_path / "few", source, exact_scan_max=exact_scan_max, delta_ttl=0.0)
    gen, delta = reader._gen, reader._recent(reader._gen)
    assert gen is not None and delta is not None
    assert not gen.index["dhash"].identity and gen.index["phash"].identity
    for kind in ("phash", "dhash"):
        for q in [int(v) for v in few.column(kind)[1]] + [0, 2**64 - 1]:
            h = to_hex(kind, q)
            for radius in (0, 1, 10, 11, 64):
                fast = reader.within(kind, hash=h, radius=radius)
                assert [(m.distance, m.id) for m in fast] == _exact(few, kind, q, radius)
                assert fast == reader._within_merged(gen, delta, kind, [(q, False)], radius, None)
                mirrored = reader.within(kind, hash=h, radius=radius, mirror=True)
                queries = [(q, False), (mirror_value(kind, q), True)]
                assert mirrored == reader._within_merged(gen, delta, kind, queries, radius, None)
            for n in (1, 5, 13, 40):
                fast = reader.nearest(kind, hash=h, k=n)
                assert [(m.distance, m.id) for m in fast] == _exact(few, kind, q, 64)[:n]
                assert fast == reader._nearest_merged(gen, delta, kind, [(q, False)], n, None, None)
        for image in few.ids[few.column(kind)[0]].tolist():
            q = parse_hex(kind, reader.hashes_of(image)[kind])
            got = reader.nearest(kind, image_id=image, k=40)
            assert image not in [m.id for m in got] and len(got) == len(few.column(kind)[0]) - 1
            assert got == reader._nearest_merged(gen, delta, kind, [(q, False)], 40, image, None)
            assert reader.within(kind, image_id=image, radius=0) == reader._within_merged(
                gen, delta, kind, [(q, False)], 0, image
            )

    # a recent hash moves the answers to the general path: the same as a generation built
    # with it
    moved = int(few.values[2, 0]) ^ 0b111
    source.add(str(few.ids[2]), hashed_at=10**13, phash=to_hex("phash", moved))
    source.add("fresh", hashed_at=10**13, phash=to_hex("phash", moved ^ 0b1))
    later = {str(few.ids[int(r)]): v for r, v in zip(*few.column("phash"), strict=True)}
    later[str(few.ids[2])], later["fresh"] = moved, moved ^ 0b1
    both = HashTable.from_arrays(list(later), {"phash": np.array(list(later.values()), np.uint64)})
    build_generation(tmp_path / "both", both, trees=5)
    built = IndexReader(tmp_path / "both", exact_scan_max=exact_scan_max)
    for q in [moved, 0, *later.values()]:
        h = to_hex("phash", q)
        for radius in (0, 10, 64):
            assert reader.within("phash", hash=h, radius=radius) == built.within(
                "phash", hash=h, radius=radius
            )
        assert reader.nearest("phash", hash=h, k=40) == built.nearest("phash", hash=h, k=40)


def test_the_numpy_scan_answers_as_the_compiled_one(tmp_path, table, monkeypatch, caplog):
    """Where the C scan was not built (no compiler at install), the reader scans with numpy,
    says so, and answers every query exactly as with the compiled scan."""
    build_generation(tmp_path, table, trees=5)

    def answers(reader: IndexReader) -> list[object]:
        out: list[object] = []
        for kind in ("phash", "dhash", "ahash"):
            k = table.kinds.index(kind)
            for row in (*range(6000, 6020), 0, 17):
                q = to_hex(kind, int(table.values[row, k]) ^ 0b101)
                for radius in (0, 6, 14, 40, 64):
                    out.append(reader.within(kind, hash=q, radius=radius))
                out.append(reader.within(kind, hash=q, radius=10, mirror=True))
                for n in (1, 5, 12, len(table.ids) + 3):
                    out.append(reader.nearest(kind, hash=q, k=n))
        return out

    compiled = IndexReader(tmp_path, MemorySource())
    want = answers(compiled)
    assert type(compiled._gen.index["phash"]._local.scanner).__name__ == "FusedScanner"
    monkeypatch.setattr(popscan, "COMPILED", False)
    reader_module._say_numpy_scan.cache_clear()  # said once per process
    with caplog.at_level(logging.WARNING, logger="services.indexer.reader"):
        plain = IndexReader(tmp_path, MemorySource())
    assert "_popscan.c) is not built: scanning with numpy" in caplog.text
    assert answers(plain) == want
    assert type(plain._gen.index["phash"]._local.scanner).__name__ == "OrderedScanner"
