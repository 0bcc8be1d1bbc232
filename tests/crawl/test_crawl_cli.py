"""`lookalike crawl | crawls | cancel` as a user runs them, against real workers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lookalike_cli.main import child_command
from services.replica.collection import Collection
from services.replica.server import run_replica
from tests.crawl.conftest import worker_env
from tests.crawl.reference import reference_bfs
from tests.crawl.test_crawl_e2e import pick_seed

pytestmark = pytest.mark.timeout(600)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        child_command(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_crawl_command_shows_progress_and_summary(
    demo_collection: Path, fresh_graph, workers
) -> None:
    local, store = fresh_graph
    collection = Collection.load(demo_collection)
    seed = pick_seed(collection)
    expected = reference_bfs(collection.similar_ids, [seed], 1)
    with run_replica(collection) as replica:
        workers(local, replica.env(), n=1)
        env = worker_env(local, replica.env())
        proc = cli(env, "crawl", "--seed", seed, "--depth", "1")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "img/s" in proc.stderr  # the live progress bar
        assert (
            f"{len(expected.fetched)} images fetched" in proc.stdout
            and f"{len(expected.nodes)} stored" in proc.stdout
        ), proc.stdout
        listed = json.loads(cli(env, "crawls", "--json").stdout)
        assert listed[0]["status"] == "done" and listed[0]["seeds"] == [seed]
        shown = cli(env, "crawls", listed[0]["id"])
        assert listed[0]["id"] in shown.stdout and "done" in shown.stdout
    assert store.counts()["images"] == len(expected.nodes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["crawl", "--seed", "Not-An-Id", "--depth", "1"], "is not a catalogue image id"),
        (["crawl", "--seed", "abcd1234", "--depth", "99"], "depth must be an integer from 0"),
        (["crawl", "--seed", "abcd1234", "--max-images", "0"], "max_images must be a positive"),
        (["crawls", "ffffffffffff"], "no crawl 'ffffffffffff'"),
        (["cancel", "nope"], "no crawl 'nope'"),
    ],
)
def test_bad_crawl_requests_get_clear_errors(settings, args: list[str], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")}
    env["LOOKALIKE_STATE_DIR"] = str(settings.state_dir)
    proc = cli(env, *args)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
