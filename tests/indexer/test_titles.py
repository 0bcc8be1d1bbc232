"""The title-word index (services/indexer/titles.py) against a brute-force search, in memory
and through a published generation with titles stored after it (an in-memory stand-in for
the graph; the API's tests use the real one)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from services.indexer.build import build_generation
from services.indexer.table import HashTable
from services.indexer.titles import WORD_MAX, TitleReader, TitleTable, words

VOCABULARY = [
    "portrait",
    "port",
    "portal",
    "study",
    "studies",
    "sunflowers",
    "sun",
    "vase",
    "café",
    "Cafe",
    "école",
    "river",
    "rivers",
    "night",
    "nightfall",
    "a",
    "of",
    "the",
    "1890",
    "18th",
    "x" * 40,
]


def brute(rows: list[tuple[str, str]], q: str) -> list[str]:
    query = words(q)
    found = [
        (len(set(words(t))), i)
        for i, t in rows
        if query and all(any(w.startswith(p) for w in words(t)) for p in query)
    ]
    return [i for _, i in sorted(found)]


def random_rows(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [
        (
            f"i{k:05d}",
            " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(1, 6)))
            + rng.choice(["", ",", " (detail)", "!"]),
        )
        for k in range(n)
    ]


def test_words_fold_case_and_accents_and_cut_long_words() -> None:
    assert words("Café TERRACE, at night_time (1888)") == [
        "cafe",
        "terrace",
        "at",
        "night",
        "time",
        "1888",
    ]
    assert words("École") == ["ecole"]
    assert words("") == [] and words(None) == [] and words("!!! --") == []
    assert words("y" * 50) == ["y" * WORD_MAX]


@pytest.mark.parametrize(
    "q",
    [
        "port",
        "portrait",
        "p",
        "sun vase",
        "cafe",
        "CAFÉ",
        "ecol",
        "18",
        "the of a",
        "x" * 45,
        "river night",
        "zebra",
        "",
    ],
)
def test_matches_agree_with_brute_force(q: str) -> None:
    rows = random_rows(800, seed=3)
    table = TitleTable.build(rows)
    got = table.ids[table.match(words(q))].tolist()
    assert got == brute(rows, q)


def test_untitled_images_are_left_out_and_an_empty_index_answers() -> None:
    table = TitleTable.build([("a", None), ("b", "   "), ("c", "Sun")])
    assert table.ids.tolist() == ["c"]
    empty = TitleTable.build([])
    assert empty.match(["sun"]).tolist() == []


class Titles:
    """Titles stored after a generation: what ``titles_since`` finds in the graph."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str]] = []

    def titles_since(self, since_ms: int) -> list[tuple[str, str | None]]:
        return [(i, t) for at, i, t in self.rows if at >= since_ms]


def test_reader_pages_a_generation_and_newer_titles_in_one_order(tmp_path) -> None:
    rows = random_rows(500, seed=5)
    empty = HashTable.from_arrays([], np.zeros((0, 3), np.uint64), np.zeros(0, np.int64))
    build_generation(tmp_path, empty, trees=1, titles=(TitleTable.build(rows), 1_000_000))
    source = Titles()
    reader = TitleReader(tmp_path, source, fresh_ttl=0, check_interval=0)
    # Newer: a new image, and a changed title (its old words must no longer find it).
    changed = next(i for i, t in rows if "portrait" in words(t))
    source.rows += [
        (2_000_000, "new00001", "Portrait of a river"),
        (2_000_000, changed, "Sunflowers"),
    ]
    now = dict(rows) | {"new00001": "Portrait of a river", changed: "Sunflowers"}
    for q in ("portrait", "sun", "river port", "of"):
        expected = brute(list(now.items()), q)
        pages = []
        for offset in range(0, len(expected) + 7, 7):
            found = reader.search(q, offset, 7)
            assert found.total == len(expected)
            pages += found.ids
        assert pages == expected, q
    assert changed not in reader.search("portrait", 0, 1000).ids


def test_reader_without_a_generation_uses_the_newer_titles_alone(tmp_path) -> None:
    source = Titles()
    source.rows.append((5, "a1", "Wheatfield with crows"))
    reader = TitleReader(tmp_path / "none", source)
    assert reader.search("crow", 0, 10).ids == ["a1"]
    assert reader.search("", 0, 10).total == 0
