"""The workers' write mark (lookalike.hashmark) and the reader's use of it: the rule, the mark
in a real Redis, and the reader that asks its hash source only when the mark does not show
the graph settled (the source here is in memory; test_search_settled.py runs the real stack).
"""

from __future__ import annotations

import logging
import socket

import numpy as np
import pytest
import redis

from lookalike import hashmark
from services.indexer.build import build_generation
from services.indexer.reader import DELTA_SLACK_MS, IndexReader
from services.indexer.titles import TitleTable, TitleTexts
from tests.indexer.helpers import MemorySource, synthetic_table

READ_AT = 10_000_000  # when the test generation's graph read began (epoch ms)


@pytest.mark.parametrize(
    ("mark", "read_at", "settled"),
    [
        (None, READ_AT, False),  # no mark: Redis flushed, or workers that do not set it
        (READ_AT - DELTA_SLACK_MS - 1, None, False),  # a generation without a read time
        (READ_AT - DELTA_SLACK_MS - 1, 0, False),
        (READ_AT - 3_600_000, READ_AT, True),  # written long before the read
        (READ_AT - DELTA_SLACK_MS, READ_AT, True),  # exactly the slack before it
        (READ_AT - DELTA_SLACK_MS + 1, READ_AT, False),  # within the slack: may commit late
        (READ_AT, READ_AT, False),
        (READ_AT + 5, READ_AT, False),  # newer than the read
    ],
)
def test_settled_only_when_every_announced_write_precedes_the_read_by_the_slack(
    mark, read_at, settled
) -> None:
    assert hashmark.settled(mark, read_at, DELTA_SLACK_MS) is settled


def _announce(client: redis.Redis, database: str | None, at: int) -> None:
    pipe = client.pipeline(transaction=False)
    hashmark.announce(pipe, database, at)
    pipe.execute()


def test_the_mark_in_redis_only_grows_and_is_kept_per_graph(redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    assert hashmark.newest(client, "g1") is None  # missing: not known
    _announce(client, "g1", 1_000)
    _announce(client, "g1", 500)  # an older write announced late does not lower it
    assert hashmark.newest(client, "g1") == 1_000
    _announce(client, "g1", 2_000)
    assert hashmark.newest(client, "g1") == 2_000
    assert hashmark.newest(client, "g2") is None  # another graph sharing the Redis
    assert hashmark.newest(client, None) is None
    with pytest.raises(ValueError, match="epoch milliseconds"):
        _announce(client, "g1", -1)


def test_redis_away_reads_as_not_known_said_once(caplog) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    marks = hashmark.RedisMarks(redis.Redis(port=port, socket_connect_timeout=1), None)
    with caplog.at_level(logging.WARNING, logger="lookalike.hashmark"):
        assert marks.newest() is None
        assert marks.newest() is None
    said = [r for r in caplog.records if "write mark" in r.getMessage()]
    assert len(said) == 1 and "asking the graph" in said[0].getMessage()


class Marks:
    def __init__(self, value: int | None) -> None:
        self.value = value

    def newest(self) -> int | None:
        return self.value


@pytest.fixture
def index(tmp_path):
    table = synthetic_table(300, seed=3, variants=0.0)
    ids = table.ids.tolist()
    titles = [(i, f"picture {i}" if n % 3 else None) for n, i in enumerate(ids)]
    titles[1] = (ids[1], "Sonnenblumen — «étude» ✓")
    build_generation(tmp_path, table, trees=2, titles=(TitleTable.build(titles), READ_AT))
    return tmp_path, table, dict(titles)


def test_a_settled_graph_is_not_asked_and_titles_come_from_the_index(index) -> None:
    folder, table, titles = index
    source = MemorySource()
    marks = Marks(READ_AT - DELTA_SLACK_MS - 60_000)
    reader = IndexReader(folder, source, marks=marks, delta_ttl=0.0)
    q = table.values[5, table.kinds.index("phash")]
    assert reader.nearest("phash", hash=f"{int(q):016x}", k=1)[0].id == table.ids[5]
    ids = [str(i) for i in table.ids[:6]]
    got = reader.titles_of([*ids, "not-indexed"])
    assert got == {i: titles[i] or "" for i in ids}  # untitled images: ""
    assert got[ids[1]] == "Sonnenblumen — «étude» ✓"
    assert source.calls == 0


def test_a_newer_or_missing_mark_asks_the_graph_and_finds_what_it_holds(index) -> None:
    folder, table, _ = index
    source = MemorySource()
    late = synthetic_table(1, seed=99, variants=0.0)
    hashes = {
        k: f"{int(late.values[0, j]):016x}" for j, k in enumerate(late.kinds) if k in source.kinds
    }
    source.add("late", READ_AT + 1_000, **hashes)  # hashed after the generation's read
    marks = Marks(READ_AT + 1_000)
    reader = IndexReader(folder, source, marks=marks, delta_ttl=0.0)
    assert reader.nearest("phash", hash=hashes["phash"], k=1)[0].id == "late"
    assert reader.titles_of(["late", str(table.ids[0])]) == {}  # not current: ask the graph
    assert source.calls >= 1
    marks.value = None  # Redis flushed: not known either
    calls = source.calls
    assert reader.nearest("phash", hash=hashes["phash"], k=1)[0].id == "late"
    assert source.calls > calls


def test_a_generation_without_a_read_time_always_asks(tmp_path) -> None:
    table = synthetic_table(50, seed=4, variants=0.0)
    build_generation(tmp_path, table, trees=1)  # an offline build: no titles, no read time
    source = MemorySource()
    reader = IndexReader(tmp_path, source, marks=Marks(0), delta_ttl=0.0)
    assert reader.generation is not None and reader.generation.read_at is None
    reader.nearest("phash", hash=f"{int(table.values[0, 0]):016x}", k=1)
    assert source.calls == 1
    assert reader.titles_of([str(table.ids[0])]) == {}


def test_title_texts_round_trip(tmp_path) -> None:
    rows = [("b", "Zwei"), ("a", "eins"), ("c", None), ("d", ""), ("b", "zwei, later")]
    texts = TitleTexts.build(rows)
    texts.save(tmp_path)
    loaded = TitleTexts.load(tmp_path)
    assert loaded is not None
    assert loaded.get(["a", "b", "c", "d", "x"]) == {"a": "eins", "b": "zwei, later", "d": ""}
    assert np.asarray(loaded.ids).tolist() == ["a", "b", "d"]
    assert TitleTexts.load(tmp_path / "nothing-here") is None


def test_the_ranking_is_the_same_with_or_without_the_graph_asked(index) -> None:
    """What a settled search skips (recent hashes identical to the generation's) must not
    change its answer: the candidates are the same nearest either way."""
    folder, table, _ = index
    source = MemorySource()
    for row in range(0, 300, 5):  # 60 hashes re-read from the graph, as within the slack
        source.add(
            str(table.ids[row]),
            1_000,
            **{k: f"{int(table.values[row, j]):016x}" for j, k in enumerate(table.kinds)},
        )
    alone = IndexReader(folder, MemorySource(), marks=Marks(0))
    asked = IndexReader(folder, source, marks=Marks(None))
    for row in (0, 7, 42, 199):
        image_id = str(table.ids[row])
        a = [(m.id, m.weighted, m.match) for m in alone.rank_id(image_id, k=10)]
        b = [(m.id, m.weighted, m.match) for m in asked.rank_id(image_id, k=10)]
        assert a == b and len(a) == 10
    assert source.calls >= 1
