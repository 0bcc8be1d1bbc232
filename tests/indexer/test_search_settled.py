"""``lookalike search`` / ``duplicates`` through the real stack (Redis, the Bolt server, the
indexer as its own process): on a settled graph the index answers alone (the graph driver is
not even imported), an image hashed after the build through the workers' code is still found
(the graph is asked), and nothing is lost when Redis is away or was flushed."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from lookalike import hashmark
from lookalike_cli.children import child_env
from services.indexer.reader import DELTA_SLACK_MS
from tests.indexer.test_graph_e2e import _jpeg, _store_pictures, collection  # noqa: F401 - fixture
from tests.support import own_state
from workers import pipeline

# Runs the CLI, then says on stderr whether the graph driver was imported.
_RUN = (
    "import atexit, sys; "
    "atexit.register(lambda: print('neo4j imported:', 'neo4j' in sys.modules, file=sys.stderr)); "
    "from lookalike_cli.main import main; main()"
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_search_answers_from_the_index_alone_until_the_graph_has_more(
    fresh_graph,
    redis_url,
    tmp_path,
    collection,  # noqa: F811 - the fixture
) -> None:
    local, store = fresh_graph
    own = own_state(local, tmp_path / "state")
    env = child_env(own)

    def lookalike(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _RUN, *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=180,
        )

    # Hashed a while ago, and announced as the workers announce their writes.
    written = int(time.time() * 1000) - DELTA_SLACK_MS - 60_000
    _store_pictures(store, collection, written)
    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    hashmark.announce(pipe, own.neo4j_database, written)
    pipe.execute()
    built = lookalike("indexer", "--once")
    assert built.returncode == 0, built.stderr

    query = tmp_path / "query.jpg"
    query.write_bytes(_jpeg(collection["orig02"].resize((300, 300)), quality=60))
    found = lookalike("search", str(query), "-k", "3")
    assert found.returncode == 0, found.stderr
    first = found.stdout.splitlines()[2]
    assert "orig02" in first and "picture orig02" in first  # the title, from the index
    assert "neo4j imported: False" in found.stderr

    dups = lookalike("duplicates", "orig00", "--kind", "ahash")
    assert dups.returncode == 0, dups.stderr
    assert "picture copy00flip" in dups.stdout
    assert "neo4j imported: False" in dups.stderr

    # Redis away: the graph is asked instead, the same answer, said once.
    away = lookalike(
        "search", str(query), "-k", "3", REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0"
    )
    assert away.returncode == 0, away.stderr
    assert away.stdout == found.stdout
    assert away.stderr.count("cannot read the workers' write mark") == 1
    assert "neo4j imported: True" in away.stderr

    # A picture hashed after the build, through the workers' own steps: found at once.
    late = collection["orig05"].rotate(180)
    store.upsert_images([{"id": "late", "title": "picture late"}])
    thumb = pipeline.examine(
        late, "late", "http://example.invalid/late.jpg", want=pipeline.HASH_ONLY, embedder=None
    )
    at = pipeline.publish_vectors(client, [thumb], 1000, database=own.neo4j_database)
    pipeline.store_thumbnails(store, [thumb], at)
    assert hashmark.newest(client, own.neo4j_database) == at
    late_query = tmp_path / "late.jpg"
    late_query.write_bytes(_jpeg(late))
    fresh = lookalike("search", str(late_query), "-k", "3")
    assert fresh.returncode == 0, fresh.stderr
    first = fresh.stdout.splitlines()[2]
    assert "late" in first and "picture late" in first
    assert "neo4j imported: True" in fresh.stderr

    # Redis flushed (no mark): the graph is asked, nothing lost.
    client.delete(hashmark.key(own.neo4j_database))
    flushed = lookalike("search", str(late_query), "-k", "3")
    assert flushed.returncode == 0, flushed.stderr
    assert flushed.stdout == fresh.stdout
    assert "neo4j imported: True" in flushed.stderr
    assert Path(tmp_path / "state" / "index" / "CURRENT").exists()
