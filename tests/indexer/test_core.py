"""The pure pieces: hash arithmetic, exact multi-index search, pairs and groups, tables,
generation folders. Checked against brute force, on hashes of synthetic and real pictures."""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest
from PIL import Image

from lookalike.hashing import HASH_BITS, HASH_KINDS, hash_image, hex_to_bits, mirrored_hashes
from services.indexer import generations as gens
from services.indexer.bits import (
    BadHash,
    ExactScanner,
    bit_rows,
    mirror_value,
    parse_hex,
    to_hex,
)
from services.indexer.build import build_generation
from services.indexer.duplicates import Pair, find_pairs, self_join
from services.indexer.multindex import MultiIndex
from services.indexer.table import HashTable
from tests.indexer.helpers import synthetic_table


@functools.cache
def _sample_pictures() -> tuple[Image.Image, ...]:
    """Real photographs and scans shipped with scikit-image (no download needed)."""
    import skimage.data as data

    out = []
    for name in (
        "astronaut",
        "camera",
        "coffee",
        "chelsea",
        "coins",
        "moon",
        "page",
        "text",
        "rocket",
        "horse",
        "clock",
        "grass",
        "brick",
        "gravel",
        "retina",
        "logo",
    ):
        try:
            array = getattr(data, name)()
        except Exception:  # pragma: no cover - a sample missing from this scikit-image
            continue
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        if array.ndim == 3 and array.shape[2] == 4:
            array = array[..., :3]
        out.append(Image.fromarray(array.astype(np.uint8)))
    assert len(out) >= 10
    return tuple(out)


def _pictures() -> list[Image.Image]:
    return [p.copy() for p in _sample_pictures()]


def test_hex_parsing_names_the_bad_value():
    assert parse_hex("phash", "00000000000000ff") == 255
    with pytest.raises(BadHash, match="'abc' is not 16 hex digits"):
        parse_hex("phash", "abc")
    with pytest.raises(BadHash, match="not hexadecimal"):
        parse_hex("dhash", "zz000000000000ff")
    with pytest.raises(BadHash, match="14 hex digits"):
        parse_hex("colorhash", "00000000000000ff")
    with pytest.raises(ValueError, match="unknown hash kind 'bhash'"):
        parse_hex("bhash", "00")
    assert to_hex("colorhash", 255) == "000000000000ff"


def test_bit_rows_match_the_hashing_module():
    for picture in _pictures()[:4]:
        for kind, value in hash_image(picture).as_dict().items():
            row = bit_rows(np.array([parse_hex(kind, value)], np.uint64), HASH_BITS[kind])[0]
            assert row.tolist() == hex_to_bits(value, HASH_BITS[kind]).tolist()


def test_mirror_derivation_on_real_pictures():
    """The mirror hash derived from a hash is (nearly) the hash of the flipped picture."""
    worst: dict[str, int] = {}
    for picture in _pictures():
        direct, flipped = hash_image(picture).as_dict(), mirrored_hashes(picture).as_dict()
        for kind in HASH_KINDS:
            derived = mirror_value(kind, parse_hex(kind, direct[kind]))
            d = (derived ^ parse_hex(kind, flipped[kind])).bit_count()
            worst[kind] = max(worst.get(kind, 0), d)
    assert worst["ahash"] == 0 and worst["whash"] == 0 and worst["colorhash"] == 0
    assert worst["phash"] <= 10 and worst["dhash"] <= 16
    # and the derivation is an involution where it is exact
    v = parse_hex("ahash", hash_image(_pictures()[0]).ahash)
    assert mirror_value("ahash", mirror_value("ahash", v)) == v


@pytest.mark.parametrize("radius", [0, 3, 7, 10, 11])
def test_multindex_equals_exact_scan(radius):
    table = synthetic_table(4000, seed=1)
    values = table.values[:, 0]
    multi = MultiIndex.build(values)
    exact = ExactScanner(values)
    rng = np.random.default_rng(radius)
    queries = np.concatenate(
        [
            values[rng.integers(0, len(values), 60)],
            rng.integers(0, 2**63, 20, dtype=np.int64).astype(np.uint64),
        ]
    )
    for q in queries.tolist():
        got_pos, got_d = multi.within(q, radius)
        want_pos, want_d = exact.within(q, radius)
        assert got_pos.tolist() == want_pos.tolist()
        assert got_d.tolist() == want_d.tolist()


def test_multindex_56_bit_kind_and_empty(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**56, 3000, dtype=np.int64).astype(np.uint64)
    values[1] = values[0] ^ np.uint64(0b1011)
    multi = MultiIndex.build(values, bits=56)
    multi.save(tmp_path, "colorhash")
    loaded = MultiIndex.load(tmp_path, "colorhash", 56)
    pos, d = loaded.within(int(values[0]), 3)
    assert pos.tolist()[:2] == [0, 1] and d.tolist()[:2] == [0, 3]
    empty = MultiIndex.build(np.zeros(0, np.uint64))
    assert empty.within(5, 10)[0].tolist() == []


def test_self_join_equals_brute_force():
    table = synthetic_table(1500, seed=2, variants=0.1)
    for k in range(len(table.kinds)):
        values = table.values[:, k]
        multi = MultiIndex.build(values)
        d_all = np.bitwise_count(values[:, None] ^ values[None, :])
        for radius in (4, 10):
            i, j, d = self_join(values, multi, radius, block_candidates=3000)
            want = set(zip(*np.nonzero(np.triu(d_all <= radius, 1)), strict=True))
            assert set(zip(i.tolist(), j.tolist(), strict=True)) == {
                (int(a), int(b)) for a, b in want
            }
            assert (d_all[i, j] == d).all()


def test_pairs_find_a_mirrored_copy():
    pictures = _pictures()[:6]
    ids = np.array([f"p{i}" for i in range(len(pictures))] + ["flip0"])
    hashes = [hash_image(p).as_dict() for p in pictures] + [mirrored_hashes(pictures[0]).as_dict()]
    values = np.array([parse_hex("ahash", h["ahash"]) for h in hashes], np.uint64)
    multi = MultiIndex.build(values)
    direct = find_pairs(ids, "ahash", values, multi, 4, mirror=False)
    assert not any({p.a, p.b} == {"p0", "flip0"} for p in direct)
    pairs = find_pairs(ids, "ahash", values, multi, 4, mirror=True)
    assert Pair("flip0", "p0", "ahash", 0, True) in pairs


def test_table_from_rows_rejects_bad_rows_and_keeps_the_rest():
    rows = [
        {
            "id": "good",
            "phash": "00000000000000ff",
            "dhash": "0000000000000000",
            "hashed_at": 5,
            "hash_version": "v1",
        },
        {"id": "badhex", "phash": "xyz", "dhash": "0000000000000001", "hashed_at": 6},
        {"id": "old", "phash": "00000000000000ff", "hash_version": "v0", "hashed_at": 7},
        {"phash": "00000000000000ff"},
    ]
    table = HashTable.from_rows(rows, ("phash", "dhash"), hash_version="v1")
    assert table.ids.tolist() == ["good", "badhex"]
    assert table.present.tolist() == [[True, True], [False, True]]
    assert table.hashed_at_max == 6 and table.source_rows == 4
    text = "\n".join(table.rejected)
    assert "badhex: phash hash 'xyz' is not 16 hex digits" in text
    assert "old: hashed with 'v0', not the current 'v1'" in text
    assert "row without an image id" in text


def test_generations_publish_switch_and_cleanup(tmp_path):
    index = tmp_path / "index"
    table = synthetic_table(300, seed=3)
    numbers = [build_generation(index, table, trees=2).number for _ in range(4)]
    assert numbers == [1, 2, 3, 4]
    assert gens.current_name(index) == "gen-000004"
    assert gens.generations(index) == [3, 4]  # the current one and the previous
    meta = gens.read_meta(index / "gen-000004")
    assert meta["images"] == len(table) and set(meta["kinds"]) == {"phash", "dhash", "ahash"}

    # an abandoned build (a builder that died) is never published and is cleaned up
    abandoned = index / ".build-000005-999999"
    abandoned.mkdir()
    (abandoned / "ids.npy").write_bytes(b"half")
    with pytest.raises(ValueError, match="incomplete build"):
        gens.publish(index, abandoned, 5)
    assert gens.current_name(index) == "gen-000004"
    result = build_generation(index, table, trees=2)
    assert result.number == 6 and ".build-000005-999999" in result.removed
    assert not abandoned.exists()

    with pytest.raises(gens.NoGeneration, match="gen-000099"):
        gens.switch(index, "gen-000099")
    (index / gens.CURRENT).write_text("garbage\n")
    with pytest.raises(ValueError, match="not a generation name"):
        gens.current_name(index)


def test_builder_lock_is_exclusive(tmp_path):
    index = tmp_path / "index"
    with gens.builder_lock(index):
        pid = os.fork()
        if pid == 0:  # child: another process must be refused
            try:
                with gens.builder_lock(index):
                    os._exit(1)
            except gens.IndexerBusy:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    with gens.builder_lock(index):  # released: free again
        pass


def test_rebuild_request_file(tmp_path):
    assert not gens.take_rebuild_request(tmp_path)
    gens.request_rebuild(tmp_path)
    assert gens.take_rebuild_request(tmp_path)
    assert not gens.take_rebuild_request(tmp_path)


def test_empty_table_builds_a_generation(tmp_path):
    result = build_generation(tmp_path, HashTable.empty(), trees=3)
    meta = json.loads((result.path / gens.META).read_text())
    assert meta["images"] == 0


def test_incremental_pairs_equal_a_full_join():
    from services.indexer.duplicates import update_pairs

    table = synthetic_table(2500, seed=4, variants=0.1)
    k = table.kinds.index("dhash")
    ids, values = table.ids, table.values[:, k].copy()
    before = find_pairs(ids, "dhash", values, MultiIndex.build(values), 10)
    old = dict(zip(ids.tolist(), values.tolist(), strict=True))

    # some hashes change, some images go, some arrive (copies of existing ones)
    rng = np.random.default_rng(1)
    changed = rng.choice(len(ids), 40, replace=False)
    values[changed] ^= np.uint64(0b1011)
    keep = np.ones(len(ids), bool)
    keep[rng.choice(len(ids), 30, replace=False)] = False
    new_ids = np.concatenate([ids[keep], np.array([f"new{i}" for i in range(20)])])
    new_values = np.concatenate([values[keep], values[rng.choice(len(ids), 20)] ^ np.uint64(1)])

    multi = MultiIndex.build(new_values)
    after, joined = update_pairs(before, "dhash", new_ids, new_values, multi, 10, old)
    assert after == find_pairs(new_ids, "dhash", new_values, multi, 10)
    assert joined < 100  # only the changed and new images were joined again
