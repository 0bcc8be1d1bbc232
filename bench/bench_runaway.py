"""Runaway ad-hoc Cypher benchmark: how much CPU the graph server still spends after the API's
time limit stopped a runaway query, against a query a client merely abandons, measured in the
same run.

- **Graph:** ``--images`` images (default 2,000), each listing 5 others (bench_graph.py's
  clustered generator), in its own embedded ArcadeDB; the runaway query counts every path of
  up to 12 hops (``MATCH p=(a:Image)-[*..12]-(b:Image) RETURN count(p)``): hours of work.
- **API:** ``POST /cypher`` with it on ``lookalike serve`` (time limit 5 s, the default). The
  graph server's CPU (from ``/proc``) is sampled over ``--window`` seconds while the query
  runs, and over the same window right after the API answered 408.
- **Baseline:** the same query sent straight through the driver by a client that gives up
  after 5 s and closes its connection (what the API did before it stopped queries): the
  server's CPU over the same window after that. The abandoned query is then terminated.

Prints CPU cores busy (CPU seconds per second) in each window, and writes the figures (date,
git commit, load average at start and end) to ``bench/results/runaway.json``.

    python bench/bench_runaway.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _report import publish  # noqa: E402
from bench_api import api_process, graph_target  # noqa: E402
from bench_graph import clustered_graph  # noqa: E402
from bench_uploads import git_commit  # noqa: E402

from lookalike import stack  # noqa: E402
from lookalike.graph import GraphStore  # noqa: E402

RESULTS = REPO / "bench" / "results" / "runaway.json"
RUNAWAY = "MATCH p=(a:Image)-[*..12]-(b:Image) RETURN count(p) AS n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy(pid: int, seconds: float) -> float:
    """CPU cores ``pid`` keeps busy over the next ``seconds``."""
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return round((cpu_seconds(pid) - before) / (time.monotonic() - start), 3)


def running(graph: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        q for q in stack.server_command(graph, "list queries") or [] if RUNAWAY in q.get("text", "")
    ]


def wait_running(graph: dict[str, Any]) -> None:
    deadline = time.monotonic() + 30
    while not running(graph):
        if time.monotonic() > deadline:
            sys.exit("the runaway query never showed up on the graph server")
        time.sleep(0.1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import requests

    started = time.time()
    load_before = os.getloadavg()[0]
    with graph_target(None, True) as (settings, _):
        graph_record = settings.embedded()["graph"]
        pid = int(graph_record["pid"])
        data = clustered_graph(args.images, 5)
        with GraphStore.connect(settings) as store:
            store.ensure_schema()
            store.upsert_images(data.images)
            store.upsert_edges(data.edges, seen=1)
        time.sleep(5)  # the load's own after-work (index pages) settles first
        idle = busy(pid, args.window)

        # Baseline: a client that gives up after 5 s and closes its connection.
        print("baseline: a client abandons the query...", file=sys.stderr)
        store = GraphStore.connect(settings)
        worker = threading.Thread(
            target=lambda: _swallow(lambda: store.read_rolled_back(RUNAWAY, {}, 5.0, 10)),
            daemon=True,
        )
        worker.start()
        wait_running(graph_record)
        abandoned_during = busy(pid, args.window)
        time.sleep(max(0.0, 5.0 - args.window))
        store.close()  # the client gives up: its connection closes
        abandoned_after = busy(pid, args.window)
        still_running = bool(running(graph_record))
        for q in running(graph_record):
            stack.server_command(graph_record, f"terminate query {q['id']}")
        time.sleep(1)

        print("API: the time limit stops the query...", file=sys.stderr)
        with api_process(settings, 1, 4) as (url, _proc):
            answer: dict[str, Any] = {}
            poster = threading.Thread(
                target=lambda: answer.update(
                    r=requests.post(url + "/cypher", json={"query": RUNAWAY}, timeout=120)
                )
            )
            poster.start()
            wait_running(graph_record)
            stopped_during = busy(pid, args.window)
            poster.join()
            stopped_after = busy(pid, args.window)
            left_running = bool(running(graph_record))
    return {
        "benchmark": "runaway",
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "git_commit": git_commit(),
        "cpus": os.cpu_count(),
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "python": platform.python_version(),
        "images": args.images,
        "window_s": args.window,
        "idle_cores": idle,
        "baseline_abandoned": {
            "during_cores": abandoned_during,
            "after_cores": abandoned_after,
            "still_running_after": still_running,
        },
        "api_stopped": {
            "status": answer["r"].status_code,
            "during_cores": stopped_during,
            "after_cores": stopped_after,
            "still_running_after": left_running,
        },
    }


def _swallow(fn: Any) -> None:
    with contextlib.suppress(Exception):  # the baseline's client is cut off on purpose
        fn()


def table(r: dict[str, Any]) -> str:
    b, a = r["baseline_abandoned"], r["api_stopped"]
    return "\n".join(
        [
            f"runaway Cypher, {r['date']}, commit {r['git_commit']}, load "
            f"{r['loadavg_1min'][0]} -> {r['loadavg_1min'][1]}; graph server CPU cores busy over "
            f"{r['window_s']} s windows (idle: {r['idle_cores']})",
            f"baseline, a client abandons it:  during {b['during_cores']}, after "
            f"{b['after_cores']} (still running after: {b['still_running_after']})",
            f"API, stopped at its time limit:  during {a['during_cores']}, after "
            f"{a['after_cores']} (still running after: {a['still_running_after']}; answer "
            f"{a['status']})",
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--window", type=float, default=3.0, help="seconds per CPU sample")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results = run(args)
    return publish(results, table(results), args.out)


if __name__ == "__main__":
    main()
