"""Analysis benchmark: synchronous analysis and the whole-graph job at 10k / 100k / 200k
images, against networkx computing the same measures in the same run.

On clustered graphs like the crawled ones (bench_graph.py's generator: every image lists 5
others, 80% from its own cluster of 50):

- compute: ``summarize`` (what ``/analysis`` computes) and ``whole_graph_scores`` (what the
  job computes) at each of ``--sizes``, wall and CPU seconds of this process, against the
  baseline of networkx computing the same measures (the previous implementation: Louvain,
  scipy PageRank, sampled betweenness...) on the same graph, up to ``--baseline-max`` images.
  The answers are compared: PageRank (largest relative difference), betweenness (the same
  sources, largest absolute difference), communities by quality (modularity of each).
- endpoint: ``POST /analysis`` of ``--endpoint-nodes`` ids (whole clusters) through
  ``lookalike serve`` on the largest job graph, p50 of ``--requests`` calls, with the CPU the
  API process and the graph server spent per call; and the same analysis computed in process.
- job: at each of ``--job-sizes`` the graph is bulk-loaded into the graph server (untimed;
  ``--state-dir`` keeps it for the next run), then ``workers.analysis.run_analysis`` runs in a
  fresh process, end to end: read (streamed), compute, write-back. Reported: wall seconds per
  phase, CPU seconds of the job process and of the graph server, peak RSS of the job process.

CPU seconds matter on a shared machine: wall time there depends on who else runs, CPU time
does not. Every result records the load average at start and end.

    python bench/bench_analysis.py --state-dir /tmp/bench-analysis   # everything. Measured
        # at load 11-15 on 2 shared cores: networkx up to 10k and the engine at every size
        # ~10 min, networkx at 100k ~40 min, at 200k over an hour (not run), loading the 100k and
        # 200k graphs ~10 min (once, with --state-dir), the three jobs ~6 min
    python bench/bench_analysis.py --sizes 5000 --job-sizes 10000   # a quick look, ~2 min
    python bench/bench_analysis.py --help

Prints a table and writes the figures to ``bench/results/analysis.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
from _report import heading, labels, load_average, publish  # noqa: E402
from bench_api import api_server  # noqa: E402
from bench_crawl import cpu_seconds  # noqa: E402
from bench_graph import SyntheticGraph, clustered_graph  # noqa: E402

from lookalike import analysis, stack  # noqa: E402
from lookalike.graph import GraphStore  # noqa: E402
from lookalike.settings import Settings, load_settings  # noqa: E402

RESULTS = REPO / "bench" / "results" / "analysis.json"
CLUSTER = 50


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return {
        "wall_s": round(time.perf_counter() - wall, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
    }, out


# --------------------------------------------------------------------------- the baseline


def networkx_measures(
    ids: list[str],
    edges: list[tuple[str, str, int]],
    samples: int,
    seed: int = analysis.DEFAULT_SEED,
) -> dict[str, Any]:
    """The same measures with networkx, as the previous implementation computed them."""
    g = nx.DiGraph()
    g.add_nodes_from(sorted(ids))
    g.add_edges_from((s, t) for s, t, _ in edges if s != t)
    u = nx.Graph()
    u.add_nodes_from(sorted(g.nodes))
    u.add_edges_from(sorted({(a, b) if a < b else (b, a) for a, b in g.edges}))
    n = g.number_of_nodes()
    core = max(nx.connected_components(u), key=len)
    found = nx.community.louvain_communities(u, seed=seed)
    return {
        "pagerank": nx.pagerank(g, alpha=0.85, tol=1e-10, max_iter=1000),
        "betweenness": nx.betweenness_centrality(u, k=samples, seed=seed),
        "communities": found,
        "modularity": nx.community.modularity(u, found),
        "components": nx.number_connected_components(u),
        "strongly_connected": nx.number_strongly_connected_components(g),
        "clustering": nx.average_clustering(u),
        "transitivity": nx.transitivity(u),
        "diameter_bound": nx.approximation.diameter(u.subgraph(core), seed=seed),
        "density": nx.density(u),
        "degree_histogram": nx.degree_histogram(u),
        "in_degree": top(dict(g.in_degree())),
        "degree_centrality": top(nx.degree_centrality(u)) if n > 1 else [],
    }


def top(scores: dict[str, float], k: int = 10) -> list[str]:
    return [node for node, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def agreement(
    g: analysis.SimilarityGraph, membership: np.ndarray, samples: int, ref: dict[str, Any]
) -> dict[str, Any]:
    """How the engine's answers compare with networkx's on the same graph."""
    pr = np.array([ref["pagerank"][v] for v in g.ids])
    between, _ = analysis.betweenness(g, samples=samples)
    ref_between = np.array([ref["betweenness"][v] for v in g.ids])
    summary = analysis.community_summary(g, membership, analysis.DEFAULT_SEED)
    return {
        # networkx stops at an L1 error of n * 1e-10; PRPACK solves exactly.
        "pagerank_max_rel_diff": float(np.max(np.abs(g.pagerank - pr) / pr)),
        "betweenness_max_abs_diff": float(np.max(np.abs(between - ref_between))),
        "modularity": summary["modularity"],
        "modularity_networkx_louvain": round(ref["modularity"], 10),
        "communities": summary["count"],
        "communities_networkx_louvain": len(ref["communities"]),
    }


# --------------------------------------------------------------------------- compute


def bench_compute(graph: SyntheticGraph, baseline: bool) -> dict[str, Any]:
    ids = [image["id"] for image in graph.images]
    n = len(ids)
    build, g = timed(lambda: analysis.build_graph(ids, graph.edges))
    samples = analysis.BETWEENNESS_SAMPLES
    summary, _ = timed(lambda: analysis.summarize(g))
    fresh = analysis.build_graph(ids, graph.edges)  # nothing cached from the run above
    whole, (scores, _) = timed(lambda: analysis.whole_graph_scores(fresh))
    row: dict[str, Any] = {
        "nodes": n,
        "edges": len(graph.edges),
        "build": build,
        "summarize": summary,
        "whole_graph": whole,
    }
    log(
        f"{n:,}: build {build['wall_s']} s, summarize {summary['wall_s']} s, whole graph "
        f"{whole['wall_s']} s"
    )
    if baseline:
        base, ref = timed(lambda: networkx_measures(ids, graph.edges, samples))
        row["networkx"] = base
        row["agreement"] = agreement(g, scores.community, samples, ref)
        log(f"{n:,}: networkx {base['wall_s']} s; {row['agreement']}")
    return row


# --------------------------------------------------------------------------- servers


@contextmanager
def graph_server(state_dir: Path | None) -> Iterator[tuple[Settings, int]]:
    """The embedded graph server (its pid, for CPU accounting), kept when ``state_dir``."""
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-analysis-") as tmp:
        state = state_dir or Path(tmp)
        base = load_settings(state_dir=state, redis_url="redis://unused:1/0")
        started = not stack.status(base).get("graph", {}).get("running")
        record = stack.up(base)
        try:
            yield base, int(record["graph"]["pid"])
        finally:
            if started and state_dir is None:
                stack.down(base)
            elif started:
                log(
                    f"stack left running in {state}: `LOOKALIKE_STATE_DIR={state} lookalike "
                    "down` stops it"
                )


def loaded(base: Settings, graph: SyntheticGraph) -> Settings:
    """Settings for a database holding ``graph`` (loaded now unless it is there already)."""
    name = f"ana{len(graph.images)}"
    with contextlib.suppress(stack.StackError):
        stack.create_database(base, name)
    settings = load_settings(
        state_dir=base.state_dir, redis_url="redis://unused:1/0", neo4j_database=name
    )
    with GraphStore.connect(settings) as store:
        store.ensure_schema()
        counts = store.counts()
        if counts["images"] != len(graph.images) or counts["edges"] != len(graph.edges):
            if counts["images"]:
                store.clear()
            log(f"loading {len(graph.images):,} images and {len(graph.edges):,} edges (untimed)...")
            start = time.perf_counter()
            store.upsert_images(graph.images, batch=5000)
            store.upsert_edges(graph.edges, seen=1, batch=5000)
            log(f"loaded in {time.perf_counter() - start:.0f} s")
    return settings


# --------------------------------------------------------------------------- the job


# The job in a fresh process. Its peak is VmHWM, the high-water mark of its own memory:
# getrusage's ru_maxrss survives exec, so it would report the forking benchmark's peak.
JOB_SCRIPT = """
import json, sys, time
from pathlib import Path
from lookalike.graph import GraphStore
from lookalike.settings import load_settings
from workers import analysis
settings = load_settings(neo4j_database=sys.argv[1])
with GraphStore.connect(settings) as store:
    job = analysis.create_job(store, {"top_k": 20})
    t, c = time.perf_counter(), time.process_time()
    done = analysis.run_analysis(store, job["id"])
    wall, cpu = time.perf_counter() - t, time.process_time() - c
peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmHWM:"))
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "summary": done["summary"],
                  "peak_rss_mb": peak / 1024}))
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_job(settings: Settings, server_pid: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOKALIKE_", "NEO4J_"))}
    env.update(
        {
            "LOOKALIKE_STATE_DIR": str(settings.state_dir),
            "PYTHONPATH": str(REPO),
            "REDIS_URL": "redis://unused:1/0",
        }
    )
    server_cpu = cpu_seconds(server_pid)
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", JOB_SCRIPT, settings.neo4j_database or ""],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    job = json.loads(out.stdout.strip().splitlines()[-1])
    summary = job["summary"]
    return {
        "nodes": summary["nodes"],
        "edges": summary["edges"],
        "process_wall_s": round(wall, 2),
        "job_wall_s": round(job["wall_s"], 2),
        "phase_wall_s": summary["phase_seconds"],
        "job_cpu_s": round(job["cpu_s"], 2),
        "server_cpu_s": round(cpu_seconds(server_pid) - server_cpu, 2),
        "peak_rss_mb": round(job["peak_rss_mb"], 1),
        "server_rss_mb": round(rss_mb(server_pid), 1),
        "images_scored": summary["images_scored"],
        "communities": summary["communities"]["count"],
        "modularity": summary["communities"]["modularity"],
    }


# --------------------------------------------------------------------------- the endpoint


def bench_endpoint(
    settings: Settings, graph: SyntheticGraph, server_pid: int, nodes: int, requests_n: int
) -> dict[str, Any]:
    import requests

    ids = [image["id"] for image in graph.images[:nodes]]  # whole clusters of 50
    inside = set(ids)
    edges = [e for e in graph.edges if e[0] in inside and e[1] in inside]
    local, _ = timed(lambda: analysis.summarize(analysis.build_graph(ids, edges)))
    walls, api_cpu, server_cpu = [], 0.0, 0.0
    with api_server(settings, 1, 4) as url:
        # The server's session leader: its process group holds gunicorn and its workers.
        api_pid = min(
            int(p)
            for p in subprocess.run(
                ["pgrep", "-f", "--", f"--port {url.rsplit(':', 1)[1]}"],
                capture_output=True,
                text=True,
            ).stdout.split()
        )
        session = requests.Session()
        for n in range(requests_n + 1):
            before = (cpu_seconds(api_pid, group=True), cpu_seconds(server_pid))
            start = time.perf_counter()
            r = session.post(f"{url}/analysis", json={"ids": ids}, timeout=300)
            r.raise_for_status()
            if n == 0:  # warm-up: imports, JIT, connection pool
                continue
            walls.append(time.perf_counter() - start)
            api_cpu += cpu_seconds(api_pid, group=True) - before[0]
            server_cpu += cpu_seconds(server_pid) - before[1]
    body = r.json()
    return {
        "nodes": body["nodes"],
        "edges": body["edges"],
        "requests": requests_n,
        "p50_s": round(float(np.median(walls)), 3),
        "max_s": round(max(walls), 3),
        "api_cpu_s": round(api_cpu / requests_n, 3),
        "server_cpu_s": round(server_cpu / requests_n, 3),
        "in_process": local,
    }


# --------------------------------------------------------------------------- report


def table(r: dict[str, Any]) -> str:
    lines = [
        heading("analysis", r),
        "",
        "compute (this process), wall s (CPU s)   build      summarize    whole graph   "
        "networkx (same measures)   CPU speed-up   PageRank rel diff   modularity (Louvain)",
    ]
    for c in r["compute"]:
        nxs = c.get("networkx")
        ag = c.get("agreement", {})
        row = (
            f"  {c['nodes']:>8,} images {c['build']['wall_s']:>20.2f} "
            f"({c['build']['cpu_s']:.2f}) {c['summarize']['wall_s']:>7.2f} "
            f"({c['summarize']['cpu_s']:.2f}) {c['whole_graph']['wall_s']:>7.2f} "
            f"({c['whole_graph']['cpu_s']:.2f})"
        )
        if nxs:  # networkx computes what summarize computes
            row += (
                f" {nxs['wall_s']:>12.1f} ({nxs['cpu_s']:.1f}) "
                f"{nxs['cpu_s'] / c['summarize']['cpu_s']:>12.0f}x "
                f"{ag['pagerank_max_rel_diff']:>16.1e} {ag['modularity']:>13.4f} "
                f"({ag['modularity_networkx_louvain']:.4f})"
            )
        lines.append(row)
    if r.get("endpoint"):
        e = r["endpoint"]
        lines += [
            "",
            f"POST /analysis, {e['nodes']:,} images / {e['edges']:,} edges: p50 {e['p50_s']} s "
            f"(max {e['max_s']}) over {e['requests']} calls; CPU per call: API "
            f"{e['api_cpu_s']} s + graph server {e['server_cpu_s']} s; the same analysis in "
            f"process {e['in_process']['wall_s']} s ({e['in_process']['cpu_s']} s CPU)",
        ]
    if r.get("job"):
        lines += [
            "",
            "whole-graph job, end to end  wall s  (read / compute / write)   "
            "CPU s: job + server   peak RSS MB (server RSS)",
        ]
        for j in r["job"]:
            p = j["phase_wall_s"]
            lines.append(
                f"  {j['nodes']:>8,} images {j['job_wall_s']:>10.1f}  ({p['read']:.1f} / "
                f"{p['compute']:.1f} / {p['write']:.1f}) {j['job_cpu_s']:>12.1f} + "
                f"{j['server_cpu_s']:.1f} {j['peak_rss_mb']:>12.0f} ({j['server_rss_mb']:.0f})"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sizes",
        default="5000,10000,100000,200000",
        help="graph sizes for the in-process compute comparison",
    )
    p.add_argument(
        "--baseline-max",
        type=int,
        default=200_000,
        help="largest size networkx is run on (it takes minutes at 200k)",
    )
    p.add_argument(
        "--job-sizes",
        default="10000,100000,200000",
        help="graph sizes for the whole-graph job ('' for none)",
    )
    p.add_argument(
        "--endpoint-nodes",
        type=int,
        default=5000,
        help="images in the POST /analysis subgraph (0: skip)",
    )
    p.add_argument("--requests", type=int, default=5, help="POST /analysis calls timed")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="keep the graph server and the loaded graphs here for the next run",
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON figures")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    job_sizes = [int(x) for x in args.job_sizes.split(",") if x.strip()]
    load_before, run = load_average(), labels()  # what runs is the commit at the start
    random.seed(args.seed)
    compute = []
    for n in sizes:
        graph = clustered_graph(n, 5, CLUSTER, seed=args.seed)
        compute.append(bench_compute(graph, baseline=n <= args.baseline_max))
        del graph
    jobs: list[dict[str, Any]] = []
    endpoint: dict[str, Any] | None = None
    if job_sizes:
        with graph_server(args.state_dir) as (base, server_pid):
            for n in job_sizes:
                graph = clustered_graph(n, 5, CLUSTER, seed=args.seed)
                settings = loaded(base, graph)
                jobs.append(bench_job(settings, server_pid))
                log(f"job at {n:,}: {jobs[-1]}")
                if n == max(job_sizes) and args.endpoint_nodes:
                    endpoint = bench_endpoint(
                        settings, graph, server_pid, min(args.endpoint_nodes, n), args.requests
                    )
                    log(f"endpoint: {endpoint}")
    results = {
        "benchmark": "analysis",
        **run,
        "loadavg_1min": [load_before, load_average()],
        "engine": f"igraph {__import__('igraph').__version__}",
        "baseline": f"networkx {nx.__version__}",
        "peak_rss_mb_bench_process": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
        "compute": compute,
        "endpoint": endpoint,
        "job": jobs,
    }
    return publish(results, table(results), args.out)


if __name__ == "__main__":
    main()
