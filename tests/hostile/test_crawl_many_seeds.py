"""Crawls from many seeds, as a user runs them: ``lookalike crawl --seeds-file`` and
``--all`` (every image of the catalogue, from its snapshot), through real workers. More seeds
than one crawl takes run as consecutive crawls; bad seeds are refused before anything is
queued."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lookalike_cli.main import child_command
from services.replica.collection import Collection
from services.replica.server import run_replica
from tests.crawl.conftest import worker_env
from tests.support import REPO
from workers.control import in_parts, parse_seed_lines

pytestmark = pytest.mark.timeout(600)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        child_command(*args), env=env, cwd=REPO, capture_output=True, text=True, timeout=500
    )


def test_seed_lines_are_ids_comments_and_blanks() -> None:
    lines = ["# my seeds\n", "abcd1234\n", "\n", "  efgh5678  # a painting\n", "abcd1234\n"]
    assert parse_seed_lines(lines) == ["abcd1234", "efgh5678"]
    with pytest.raises(ValueError, match=r"seeds\.txt line 2: 'Not An Id' is not a catalogue"):
        parse_seed_lines(["abcd1234", "Not An Id"], name="seeds.txt")
    assert in_parts(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]


def test_a_bad_seeds_file_is_refused_before_anything_is_queued(fresh_graph, tmp_path: Path) -> None:
    local, _ = fresh_graph
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("abcd1234\nefgh5678\nNOPE!\n")
    env = worker_env(local, {})
    before = json.loads(cli(env, "crawls", "--json").stdout)
    proc = cli(env, "crawl", "--seeds-file", str(seeds))
    assert proc.returncode == 1
    assert f"{seeds} line 3: 'NOPE!' is not a catalogue image id" in proc.stderr
    assert json.loads(cli(env, "crawls", "--json").stdout) == before
    proc = cli(env, "crawl")
    assert (
        proc.returncode == 1
        and "no seeds: give --seed ID, --seeds-file FILE or --all" in proc.stderr
    )


def test_more_seeds_than_one_crawl_takes_run_as_consecutive_crawls(
    small_collection: Collection, fresh_graph, workers, tmp_path: Path
) -> None:
    local, store = fresh_graph
    seeds = small_collection.ids[:12]
    path = tmp_path / "seeds.txt"
    path.write_text("# twelve seeds\n" + "\n".join(seeds) + "\n")
    with run_replica(small_collection) as replica:
        workers(local, replica.env(), n=2)
        env = worker_env(local, replica.env(), LOOKALIKE_MAX_SEEDS="5")
        proc = cli(env, "crawl", "--seeds-file", str(path), "--depth", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line.split(": ")[1] for line in proc.stdout.splitlines() if "(part " in line] == [
        "5 seed(s), depth 0",
        "5 seed(s), depth 0",
        "2 seed(s), depth 0",
    ]
    assert "(part 3 of 3)" in proc.stdout
    fetched = {i for i, n in store.export_all().nodes.items() if n.get("fetched_at")}
    assert fetched == set(seeds)


def test_all_crawls_every_image_of_the_snapshot(
    small_collection: Collection, fresh_graph, workers
) -> None:
    local, store = fresh_graph
    with run_replica(small_collection) as replica:
        workers(local, replica.env(), n=2)
        env = worker_env(local, replica.env(), LOOKALIKE_MAX_SEEDS="100")
        proc = cli(env, "crawl", "--all", "--snapshot", replica.snapshot_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(part 2 of 2)" in proc.stdout and "depth 0" in proc.stdout
    whole = store.export_all()
    fetched = {i for i, n in whole.nodes.items() if n.get("fetched_at")}
    assert fetched == set(small_collection.ids)
    assert len(whole.edges) == sum(
        len(dict.fromkeys(x for x in small_collection.similar_ids(i) if x != i))
        for i in small_collection.ids
    )
