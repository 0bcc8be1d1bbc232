"""Search latency: ``lookalike search FILE`` on a graph of ``--images`` hashed images, and where
its time goes, against the per-kind search it replaced, measured in the same run.

    python bench/bench_search.py                    # 10,000 images, 5 runs of each
    python bench/bench_search.py --images 2000 --runs 3
    python bench/bench_search.py --baseline main    # and main's CLI, alternated, same graph
    python bench/bench_search.py --views            # the CLI with the workers' views kept

The graph: ``--images`` pictures drawn as 1/f noise (services/indexer/synthetic.py, the
index benchmark's generator), upscaled to 128 px and hashed by the real ``hash_image``
(hashes, information, colour layout), stored in an embedded ArcadeDB in a temporary folder,
and indexed by ``lookalike indexer --once``; a Redis of its own, empty (so a search reads
the vector stream, as beside a running stack) but for the workers' mark of their newest write
(lookalike.hashmark), set as the workers would have set it for these hashes: the graph is
settled, so a search need not ask it (``--no-mark``: no mark, every search asks the graph,
as before the mark). The query files are copies of stored pictures (PNG), so each search
must rank its original first.

Measured:
- **CLI**: ``lookalike search QUERY -k 10`` as a separate process, wall time per call (the
  user's wait) and its CPU time (what the wait becomes on an idle machine: on a shared one
  the wall time mostly measures the queue for a core), and ``python -c pass`` beside it;
  with the bytecode cached (after one untimed call), as an installed copy runs; and, where
  valgrind is installed, the instructions one call executes (callgrind), which unlike CPU
  seconds do not move with the machine's load;
  with ``--baseline REV``, the same calls of REV's CLI (``git archive`` of REV, run with the
  same Python, graph and index) alternated with this tree's, and its answers compared;
- **per step**: starting Python and loading the search command (a process of its own), then
  in process the graph connection, opening the index reader, the one ranking
  (``rank_image``), titles from the graph and from the index; against the per-kind
  ``search_image`` (phash, dhash) that ``lookalike search`` used before; what a search adds
  when the index holds vectors (this graph has none): loading the embedding model and
  embedding the query; and what it adds when the workers' verification views are stored
  (lookalike.viewstore; written here for every picture into a store of the run's own, which
  the timed CLI calls do not use): importing OpenCV (a process of its own), and the ranking
  with the query's view compared with its candidates'
  (services/indexer/localpairs.QueryLocal).

Writes bench/results/search.json (``--out``), with the load average, date and commit.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _report import publish, run_label  # noqa: E402
from bench_api import graph_target  # noqa: E402
from PIL import Image  # noqa: E402

from lookalike import stack  # noqa: E402
from lookalike.graph import GraphStore  # noqa: E402
from lookalike.hashing import algorithm_version, decode_image, hash_image  # noqa: E402
from lookalike_cli.children import child_env  # noqa: E402
from services.indexer.synthetic import noise_pictures, to_display  # noqa: E402

RESULTS = REPO / "bench" / "results" / "search.json"


def pictures(n: int, seed: int = 7) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    raw = to_display(noise_pictures(rng, n))
    return [
        Image.fromarray(p).convert("RGB").resize((128, 128), Image.Resampling.BICUBIC) for p in raw
    ]


def load_graph(store: GraphStore, pics: list[Image.Image]) -> None:
    store.ensure_schema()
    # hashed over the past hours, as a crawl would (the reader re-reads the last minutes
    # before a build from the graph on every query)
    start = int(time.time() * 1000) - 4 * 3_600_000
    rows = []
    for i, pic in enumerate(pics):
        rows.append(
            {
                "id": f"s{i:06d}",
                "title": f"synthetic picture {i}",
                **hash_image(pic).node_properties(),
                "hash_version": algorithm_version(),
                "hashed_at": start + i * 1000,
            }
        )
    store.upsert_images([{"id": r["id"], "title": r["title"]} for r in rows], batch=2000)
    store.write("set_hashes", [{**r, "thumbnail": "bench"} for r in rows], batch=2000)


def mark_written(store: GraphStore, redis_url: str, database: str | None) -> int:
    """Set the workers' mark (lookalike.hashmark) to the graph's newest hash, as the workers
    that wrote them would have; returns it."""
    import redis

    from lookalike import hashmark
    from services.indexer.graph_io import read_index_rows

    newest = max(int(r["hashed_at"] or 0) for r in read_index_rows(store))
    pipe = redis.Redis.from_url(redis_url).pipeline(transaction=False)
    hashmark.announce(pipe, database, newest)
    pipe.execute()
    return newest


def timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def write_views(pics: list[Image.Image], folder: Path) -> Any:
    """Every picture's verification view in a view store, as the workers leave them."""
    from lookalike.viewstore import ViewStore

    views = ViewStore(folder, max_bytes=1 << 62)
    for i, pic in enumerate(pics):
        views.save(f"s{i:06d}", pic)
    return views


def in_process(
    settings: Any, env: dict[str, str], query: bytes, expected: str, views: Any
) -> dict[str, float]:
    """One search step by step, in a fresh interpreter's order (imports counted once)."""
    steps: dict[str, float] = {}
    t, _ = timed(
        lambda: subprocess.run(
            [
                sys.executable,
                "-c",
                "from lookalike_cli.main import cli; cli.get_command(None, 'search')",
            ],
            check=True,
            env=env,
            cwd=REPO,
        )
    )
    steps["start python, load the search command (a process)"] = t
    from services.indexer.graph_io import open_reader

    t, store = timed(lambda: GraphStore.connect(settings))
    steps["connect to the graph"] = t
    with store:
        t, reader = timed(lambda: open_reader(settings, store))
        steps["open the index reader"] = t
        t, (_, ranked) = timed(lambda: reader.rank_image(query, k=10))
        steps["rank (hash the file, candidates, evidence)"] = t
        assert ranked[0].id == expected, (ranked[0], expected)
        t, _ = timed(lambda: store.get_images([m.id for m in ranked]))
        steps["titles from the graph"] = t
        t, _ = timed(lambda: reader.titles_of([m.id for m in ranked]))
        steps["titles from the index (settled graph)"] = t
        t, _ = timed(lambda: reader.search_image(query, kinds=("phash", "dhash"), k=10))
        steps["baseline: per-kind search_image (phash, dhash)"] = t
        with_views = open_reader(settings, store, views=views.get)
        t, (_, ranked) = timed(lambda: with_views.rank_image(query, k=10))
        steps["with views: rank, the pictures compared too"] = t
        assert ranked[0].id == expected, (ranked[0], expected)
    t, _ = timed(
        lambda: subprocess.run([sys.executable, "-c", "import cv2"], check=True, env=env, cwd=REPO)
    )
    steps["with views: start python, import OpenCV (a process)"] = t
    # What a search adds when the index holds vectors (this graph has none): the model is
    # loaded (onnxruntime session) and the query embedded, then ranked with its cosines.
    from lookalike.embedding.embedder import load_embedder

    t, embedder = timed(lambda: load_embedder(settings))
    steps["with vectors: load the embedding model"] = t
    picture = decode_image(query, max_side=settings.thumbnail_size)
    t, _ = timed(lambda: embedder.embed(picture))
    steps["with vectors: embed the query"] = t
    return steps


def export(rev: str, folder: Path) -> str:
    """REV's files (``git archive``) in ``folder``; its short commit id."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return commit


def run_search(
    env: dict[str, str], root: Path, path: Path, *wrapper: str
) -> subprocess.CompletedProcess[str]:
    """One ``lookalike search`` process run from the tree ``root`` (``python -m`` puts the
    working folder first on the path), under ``wrapper`` (e.g. valgrind) if given."""
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "lookalike_cli.main", "search", str(path), "-k", "10"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def instructions(env: dict[str, str], root: Path, path: Path) -> int | None:
    """Instructions one search process executes (valgrind's callgrind; None without it):
    unlike CPU seconds on a shared machine, the same from run to run."""
    if not shutil.which("valgrind"):
        return None
    run = run_search(
        env, root, path, "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    return int(found.group(1)) if found else None


def cli_call(
    env: dict[str, str], root: Path, path: Path, expected: str
) -> tuple[float, float, str]:
    """One search process: wall and CPU seconds, and its answer."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t, run = timed(lambda: run_search(env, root, path))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if run.returncode or expected not in run.stdout.splitlines()[2]:
        raise SystemExit(f"search did not rank {expected} first: {run.stdout}{run.stderr}")
    return t, cpu, run.stdout


def summary(wall: list[float], cpu: list[float]) -> dict[str, Any]:
    return {
        "wall_median": statistics.median(wall),
        "cpu_median": statistics.median(cpu),
        "wall": wall,
        "cpu": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="keep the stack and graph in this folder (reused next time)",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="REV",
        help="also time REV's CLI (e.g. main), alternated with this tree's",
    )
    parser.add_argument(
        "--no-mark",
        action="store_true",
        help="leave the workers' write mark unset: every search asks the graph",
    )
    parser.add_argument(
        "--views",
        action="store_true",
        help="first write the workers' views where the CLI reads them (removed after): each "
        "timed search then compares its query's view with its candidates', as beside a "
        "crawl that kept views",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    label = run_label()
    pics = pictures(args.images)
    with (
        graph_target(args.state_dir, True) as (settings, _),
        tempfile.TemporaryDirectory(prefix="lookalike-bench-search-") as tmp,
    ):
        with GraphStore.connect(settings) as store:
            if store.counts()["images"] != args.images:
                store.clear()
                t, _ = timed(lambda: load_graph(store, pics))
                print(f"loaded and hashed {args.images} pictures in {t:.0f}s", file=sys.stderr)
        redis_server = stack.start_redis(Path(tmp) / "redis")
        try:
            settings = settings.model_copy(update={"redis_url": redis_server["url"]})
            if not args.no_mark:
                with GraphStore.connect(settings) as store:
                    mark_written(store, redis_server["url"], settings.neo4j_database)
            # Bytecode cached in a folder of the run's own, as an installed copy has it (a
            # PYTHONDONTWRITEBYTECODE environment would otherwise compile every module of
            # the project on every call); one untimed call per tree fills it.
            env = {
                **child_env(settings),
                "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"),
                "PYTHONDONTWRITEBYTECODE": "",
            }
            built = subprocess.run(
                [sys.executable, "-m", "lookalike_cli.main", "indexer", "--once"],
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
                check=False,
            )
            if built.returncode:
                raise SystemExit(f"indexer failed: {built.stderr}")
            trees = {"this tree": env}
            roots = {"this tree": REPO}
            if args.baseline:
                base_dir = Path(tmp) / "baseline"
                base_commit = export(args.baseline, base_dir)
                name = f"baseline {args.baseline} ({base_commit})"
                trees[name] = {**env, "PYTHONPATH": str(base_dir)}
                roots[name] = base_dir
            queries = []
            for k in range(args.runs):
                index = (k * 7919) % args.images
                path = Path(tmp) / f"query{k}.png"
                buf = io.BytesIO()
                pics[index].save(buf, "PNG")
                path.write_bytes(buf.getvalue())
                queries.append((path, f"s{index:06d}"))
            views = None
            if args.views:
                t, views = timed(lambda: write_views(pics, settings.view_dir))
                print(f"wrote {args.images} views for the CLI in {t:.0f}s", file=sys.stderr)
            for name, tree_env in trees.items():
                cli_call(tree_env, roots[name], *queries[0])
            wall: dict[str, list[float]] = {name: [] for name in trees}
            cpu: dict[str, list[float]] = {name: [] for name in trees}
            bare = []
            for path, expected in queries:
                answers = set()
                for name, tree_env in trees.items():  # alternated: both see the same load
                    t, c, out = cli_call(tree_env, roots[name], path, expected)
                    wall[name].append(t)
                    cpu[name].append(c)
                    answers.add(out)
                if len(answers) > 1:
                    raise SystemExit(f"the trees answer {path.name} differently: {answers}")
                t, _ = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
                bare.append(t)
            if views is None:
                t, views = timed(lambda: write_views(pics, Path(tmp) / "views"))
                print(f"wrote {args.images} views in {t:.0f}s", file=sys.stderr)
            steps = [
                in_process(settings, env, path.read_bytes(), expected, views)
                for path, expected in queries
            ]
            counted = {
                name: instructions(tree_env, roots[name], queries[0][0])
                for name, tree_env in trees.items()
            }
        finally:
            stack.stop_pid(int(redis_server["pid"]))
            if args.views:
                shutil.rmtree(settings.view_dir, ignore_errors=True)
    per_step = {name: statistics.median(s[name] for s in steps) for name in steps[0]}
    cli = {
        name: {**summary(wall[name], cpu[name]), "instructions": counted[name]} for name in trees
    }
    results = {
        **label,
        "images": args.images,
        "runs": args.runs,
        "mark": not args.no_mark,
        "views_for_cli": args.views,
        "cli_seconds": cli,
        "python_start_seconds": statistics.median(bare),
        "steps_seconds_median": per_step,
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    mark = "settled: the workers' mark set" if not args.no_mark else "no mark: the graph asked"
    mark += "; the workers' views kept, so each search compares" if args.views else ""
    lines = [f"lookalike search on {args.images} hashed images ({args.runs} runs; median; {mark}):"]
    lines += [
        f"  CLI call, {name:<26} wall {c['wall_median']:.3f} s, CPU {c['cpu_median']:.3f} s"
        + (f", {c['instructions'] / 1e9:.2f} G instructions" if c["instructions"] else "")
        for name, c in cli.items()
    ]
    lines.append(f"  python -c pass: {statistics.median(bare):.3f} s wall")
    if args.baseline:
        lines.append("  (same answers from both trees)")
    lines += [f"  {name:<48} {sec * 1000:8.1f} ms" for name, sec in per_step.items()]
    lines.append(
        f"{label['date']}, commit {label['commit']}; load average "
        f"{results['loadavg_1min'][0]} at start, {results['loadavg_1min'][1]} at end"
    )
    publish(results, "\n".join(lines), args.out)


if __name__ == "__main__":
    main()
