"""API benchmark: the 2-hop neighbourhood endpoint under concurrent clients, against the raw
driver call it wraps, measured in the same run.

What it measures, on a clustered random graph of ``--images`` images (each lists
``--out-degree`` others, mostly from its own cluster; bench_graph.py's generator):

- API: ``GET /images/{id}/neighborhood?depth=2`` served by ``lookalike serve`` (gunicorn,
  ``--workers`` x ``--threads``), from each of ``--levels`` concurrent clients (default 1
  and 32), each client a thread with its own keep-alive ``requests.Session``;
- baseline: the same ``GraphStore.neighborhood(id, 2, limit=api_max_nodes)`` call the endpoint
  makes, straight through the driver, from the same number of concurrent client threads;
- floor: ``GET /health`` on the same server (no graph, a tiny JSON body) from the same
  clients: what any request costs on this machine. If even that misses the p99 target at the
  top level, the target cannot be met here by any endpoint, however cheap.

All three use one harness: the clients are spread over ``--processes`` processes (so the
clients' own Python does not serialise on one GIL), run a fixed number of requests over the
same random seeds, and alternate in rounds (baseline, API, floor, baseline, API, floor) so
drift in a shared machine's load favours none. With one client the three alternate call by
call instead, on the same seed, which isolates the API's own cost (HTTP, Flask, JSON) best.
Reported: p50/p99/mean latency, requests/s, and the API/baseline ratios, against the targets
p99 <= 50 ms and overhead <= 1.5x, with the floor beside them and, as an estimate of the best
ratio any HTTP endpoint wrapping the call could reach here, (baseline + floor) / baseline.

By default it starts its own embedded ArcadeDB in a temporary state folder (no Redis: the
endpoint needs none) and stops it at the end; loading 100k images and 500k edges takes a few
minutes. ``--state-dir DIR`` keeps the stack and graph in DIR for the next run (the load is
skipped when the graph is already there). With ``NEO4J_URI`` set it uses that server, and
loads into it only with ``--allow-load``.

    python bench/bench_api.py                          # 100k images, 1 and 32 clients
    python bench/bench_api.py --images 10000 --requests 500 --rounds 1   # a quick look

Prints a table and writes the figures to ``bench/results/api.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _report import labels, publish  # noqa: E402
from bench_graph import clustered_graph, summarise  # noqa: E402

from lookalike import stack  # noqa: E402
from lookalike.graph import GraphStore  # noqa: E402
from lookalike.settings import Settings, load_settings  # noqa: E402
from lookalike_cli import children  # noqa: E402
from lookalike_cli.children import child_env  # noqa: E402

RESULTS = REPO / "bench" / "results" / "api.json"
TARGET_P99_MS = 50.0
TARGET_OVERHEAD = 1.5
DATABASE = "benchapi"


# --------------------------------------------------------------------------- the stack


@contextmanager
def graph_target(state_dir: Path | None, allow_load: bool) -> Iterator[tuple[Settings, bool]]:
    """Settings for the graph to use, and whether loading into it is allowed."""
    if os.environ.get("NEO4J_URI"):
        yield load_settings(), allow_load
        return
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-api-") as tmp:
        state = state_dir or Path(tmp)
        base = load_settings(state_dir=state, redis_url="redis://unused:1/0")
        started = not stack.status(base).get("graph", {}).get("running")
        stack.up(base)
        try:
            with contextlib.suppress(stack.StackError):  # kept from a run with --state-dir
                stack.create_database(base, DATABASE)
            yield (
                load_settings(
                    state_dir=state, redis_url="redis://unused:1/0", neo4j_database=DATABASE
                ),
                True,
            )
        finally:
            if started and state_dir is None:
                stack.down(base)
            elif started:
                print(
                    f"stack left running in {state}: `LOOKALIKE_STATE_DIR={state} "
                    "lookalike down` stops it",
                    file=sys.stderr,
                )


def ensure_graph(settings: Settings, args: argparse.Namespace, allowed: bool) -> dict[str, Any]:
    graph = clustered_graph(args.images, args.out_degree, args.cluster_size, seed=args.seed)
    with GraphStore.connect(settings) as store:
        store.ensure_schema()
        counts = store.counts()
        if counts["images"] == len(graph.images) and counts["edges"] == len(graph.edges):
            print("graph already loaded; skipping the load", file=sys.stderr)
            info: dict[str, Any] = {"loaded_now": False}
        else:
            if not allowed:
                sys.exit(
                    "NEO4J_URI is set and the graph differs: pass --allow-load to load "
                    "the benchmark graph into it"
                )
            if counts["images"]:
                store.clear()
            print(
                f"loading {len(graph.images):,} images and {len(graph.edges):,} edges at "
                f"{args.batch:,} rows per transaction...",
                file=sys.stderr,
            )
            start = time.perf_counter()
            store.upsert_images(graph.images, batch=args.batch)
            nodes_s = time.perf_counter() - start
            store.upsert_edges(graph.edges, seen=1, batch=args.batch)
            total = time.perf_counter() - start
            print(f"loaded in {total:.0f}s", file=sys.stderr)
            info = {
                "loaded_now": True,
                "node_seconds": round(nodes_s, 1),
                "edge_seconds": round(total - nodes_s, 1),
            }
    rng = random.Random(args.seed + 1)
    seeds = [img["id"] for img in rng.sample(graph.images, args.seed_pool)]
    return {"images": len(graph.images), "edges": len(graph.edges), "seeds": seeds, **info}


# --------------------------------------------------------------------------- the server


@contextmanager
def api_server(settings: Settings, workers: int, threads: int) -> Iterator[str]:
    with api_process(settings, workers, threads) as (url, _):
        yield url


@contextmanager
def api_process(
    settings: Settings, workers: int, threads: int
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``lookalike serve`` on a free port, waited for; yields its URL and process."""
    port = stack.free_port()
    log = Path(tempfile.gettempdir()) / f"bench-api-{port}.log"
    options = ("--workers", str(workers), "--threads", str(threads))
    url, proc = children.serve(child_env(settings), log, port, *options, cwd=REPO)
    try:
        yield url, proc
    finally:
        children.stop(proc, signal.SIGINT, timeout=20)


# --------------------------------------------------------------------------- the harness


def http_call(kind: str, url: str, session: Any, depth: int) -> Any:
    """One request of ``kind``: "api" (the neighbourhood) or "health" (the floor)."""

    def call(seed: str) -> None:
        if kind == "health":
            r = session.get(f"{url}/health", timeout=60)
        else:
            r = session.get(
                f"{url}/images/{seed}/neighborhood", params={"depth": depth}, timeout=60
            )
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
        _ = r.content

    return call


def _client_process(
    kind: str,
    target: dict[str, Any],
    seeds: list[str],
    threads: int,
    per_thread: int,
    depth: int,
    start_at: float,
) -> dict[str, Any]:
    """One client process: ``threads`` threads, each making ``per_thread`` calls."""
    latencies: list[float] = []
    errors: list[str] = []
    starts: list[float] = []
    lock = threading.Lock()
    if kind == "raw":
        settings = load_settings(**target["settings"])
        store = GraphStore.connect(settings)
        limit = target["limit"]

        def make_call() -> Any:
            def call(seed: str) -> None:
                store.neighborhood(seed, depth, limit=limit)

            return call
    else:
        import requests

        def make_call() -> Any:
            return http_call(kind, target["url"], requests.Session(), depth)

    def worker(offset: int) -> None:
        call = make_call()
        rng = random.Random(offset)
        mine: list[float] = []
        while time.time() < start_at:
            time.sleep(0.001)
        with lock:
            starts.append(time.time())
        for _ in range(per_thread):
            seed = seeds[rng.randrange(len(seeds))]
            t0 = time.perf_counter()
            try:
                call(seed)
            except Exception as exc:
                with lock:
                    errors.append(str(exc)[:200])
                continue
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(target["offset"] + i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    end = time.time()
    if kind == "raw":
        store.close()
    return {"latencies": latencies, "errors": errors, "start": min(starts), "end": end}


def paired_single(
    raw_target: dict[str, Any], api_target: dict[str, Any], seeds: list[str], total: int, depth: int
) -> tuple[dict[str, Any], ...]:
    """One client: the baseline call, the API request and the /health floor alternate on the
    same seed (the order rotates each time), so load drifting on a shared machine hits all
    alike. Returns (baseline, API, floor)."""
    import requests

    store = GraphStore.connect(load_settings(**raw_target["settings"]))
    session = requests.Session()
    rng = random.Random(7)
    times: dict[str, list[float]] = {"raw": [], "api": [], "health": []}

    def raw(seed: str) -> None:
        store.neighborhood(seed, depth, limit=raw_target["limit"])

    calls = [
        ("raw", raw),
        ("api", http_call("api", api_target["url"], session, depth)),
        ("health", http_call("health", api_target["url"], session, depth)),
    ]
    start = time.time()
    try:
        for n in range(total):
            seed = seeds[rng.randrange(len(seeds))]
            shift = n % len(calls)
            for name, fn in calls[shift:] + calls[:shift]:
                t0 = time.perf_counter()
                fn(seed)
                times[name].append(time.perf_counter() - t0)
    finally:
        store.close()
    wall = time.time() - start
    out = []
    for name in ("raw", "api", "health"):
        lat = times[name]
        busy = sum(lat)
        out.append(
            {
                **summarise(lat),
                "requests": len(lat),
                "errors": 0,
                "error_examples": [],
                # one client: its throughput is 1 / mean latency (the other side's time
                # in the same loop is not its own)
                "seconds": round(busy, 2),
                "requests_per_s": round(len(lat) / busy, 1),
                "_latencies": lat,
                "paired_wall_seconds": round(wall, 2),
            }
        )
    return out[0], out[1], out[2]


def merge(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine rounds: latency percentiles need the raw lists, so rounds keep theirs."""
    latencies = [x for r in rounds for x in r["_latencies"]]
    out = summarise(latencies)
    out["requests"] = sum(r["requests"] for r in rounds)
    out["errors"] = sum(r["errors"] for r in rounds)
    out["seconds"] = round(sum(r["seconds"] for r in rounds), 2)
    out["requests_per_s"] = round(out["requests"] / out["seconds"], 1)
    out["rounds"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rounds]
    return out


def measure(
    kind: str,
    target: dict[str, Any],
    seeds: list[str],
    clients: int,
    processes: int,
    total: int,
    depth: int,
) -> dict[str, Any]:
    """``total`` calls from ``clients`` concurrent clients: latency and throughput (the
    latencies are kept, as ``_latencies``, so rounds can be merged)."""
    per_thread = max(1, total // clients)
    threads = [
        clients // processes + (1 if i < clients % processes else 0) for i in range(processes)
    ]
    start_at = time.time() + 5.0  # every process connected and waiting before the start
    ctx = mp.get_context("spawn")
    with ctx.Pool(processes) as pool:
        jobs = [
            pool.apply_async(
                _client_process,
                (kind, {**target, "offset": 1000 * i}, seeds, n, per_thread, depth, start_at),
            )
            for i, n in enumerate(threads)
            if n
        ]
        parts = [j.get() for j in jobs]
    latencies = [x for p in parts for x in p["latencies"]]
    errors = [e for p in parts for e in p["errors"]]
    if not latencies:
        raise RuntimeError(f"every {kind} call failed, e.g. {errors[:1]}")
    wall = max(p["end"] for p in parts) - min(p["start"] for p in parts)
    return {
        **summarise(latencies),
        "requests": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:3],
        "seconds": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "_latencies": latencies,
    }


# --------------------------------------------------------------------------- report


def floor_bound(level: dict[str, Any]) -> dict[str, float]:
    """(baseline + floor) / baseline at p50 and p99: roughly the API/baseline ratio of an
    endpoint that added nothing to the driver call but the cheapest HTTP request this machine
    can serve. An estimate (latencies under load do not simply add), printed beside the
    measured ratio so the overhead target can be judged against what HTTP itself costs here."""
    raw, floor = level["baseline"], level["floor"]
    return {
        q: round((raw[f"{q}_ms"] + floor[f"{q}_ms"]) / raw[f"{q}_ms"], 2) for q in ("p50", "p99")
    }


def table(r: dict[str, Any]) -> str:
    main_level = r["levels"][-1]
    lines = [
        f"API benchmark on {r['backend']}: {r['graph']['images']:,} images, "
        f"{r['graph']['edges']:,} SIMILAR_TO edges; 2-hop neighbourhoods "
        f"(mean {r['mean_nodes']} images, {r['mean_edges']} edges each)",
        f"server: gunicorn {r['server']['workers']} workers x {r['server']['threads']} "
        f"threads; {r['cpus']} CPUs shared by server, clients and graph; load average "
        f"{r['loadavg_1min'][0]} at start and {r['loadavg_1min'][1]} at end",
        "",
        "clients  side                                       p50 ms   p99 ms  mean ms    req/s",
    ]
    for level in r["levels"]:
        api, raw, floor = level["api"], level["baseline"], level["floor"]
        bound = floor_bound(level)
        n = level["clients"]
        lines += [
            f"{n:>7}  API GET /images/{{id}}/neighborhood?depth=2 {api['p50_ms']:>8.1f} "
            f"{api['p99_ms']:>8.1f} {api['mean_ms']:>8.1f} {api['requests_per_s']:>8.1f}",
            f"{'':>7}  baseline GraphStore.neighborhood(id, 2)  {raw['p50_ms']:>8.1f} "
            f"{raw['p99_ms']:>8.1f} {raw['mean_ms']:>8.1f} {raw['requests_per_s']:>8.1f}",
            f"{'':>7}  ratio API/baseline                       {level['ratio_p50']:>8.2f} "
            f"{level['ratio_p99']:>8.2f} {'':>8} {level['ratio_throughput']:>8.2f}",
            f"{'':>7}  floor GET /health (no graph)             {floor['p50_ms']:>8.1f} "
            f"{floor['p99_ms']:>8.1f} {floor['mean_ms']:>8.1f} {floor['requests_per_s']:>8.1f}",
            f"{'':>7}  ratio (baseline + floor)/baseline        {bound['p50']:>8.2f} "
            f"{bound['p99']:>8.2f}   (estimate: an endpoint adding only a bare request)",
            f"{'':>7}  ({api['requests']:,} requests per side, errors: API {api['errors']}, "
            f"baseline {raw['errors']}, floor {floor['errors']})",
        ]
    lines += [
        "",
        f"at {main_level['clients']} clients: target p99 <= {TARGET_P99_MS:g} ms "
        f"{'met' if r['target_p99_met'] else 'NOT met'} "
        f"(API p99 {main_level['api']['p99_ms']:.1f} ms); target overhead <= "
        f"{TARGET_OVERHEAD}x at p50 and p99 {'met' if r['target_overhead_met'] else 'NOT met'}",
        f"{r['floor_note']}: p99 {main_level['floor']['p99_ms']:.1f} ms at "
        f"{main_level['clients']} clients",
    ]
    if not r["floor_p99_met"]:
        lines.append(
            f"even GET /health misses p99 <= {TARGET_P99_MS:g} ms at {main_level['clients']} "
            f"clients on this machine ({r['cpus']} CPUs shared by clients, server and graph): "
            "the p99 target cannot be met here by any endpoint"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--out-degree", type=int, default=5)
    p.add_argument("--cluster-size", type=int, default=50)
    p.add_argument("--batch", type=int, default=5000, help="rows per load transaction")
    p.add_argument(
        "--levels",
        default="1,32",
        help="concurrent clients to measure, comma-separated (the last is the "
        "one the targets apply to)",
    )
    p.add_argument("--processes", type=int, default=4, help="client processes (at most)")
    p.add_argument(
        "--requests",
        type=int,
        default=1000,
        help="requests per side per round at the highest concurrency",
    )
    p.add_argument(
        "--requests-low",
        type=int,
        default=200,
        help="requests per side per round at the lower concurrencies",
    )
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds per side")
    p.add_argument("--warmup", type=int, default=200, help="untimed requests per side")
    p.add_argument("--seed-pool", type=int, default=5000, help="random seeds to draw from")
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=16, help="threads per gunicorn worker")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="keep the stack and graph here between runs (skips reloading)",
    )
    p.add_argument(
        "--allow-load",
        action="store_true",
        help="with NEO4J_URI set: allow loading the benchmark graph into it",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    try:
        args.levels = sorted({int(x) for x in args.levels.split(",") if x.strip()})
    except ValueError:
        p.error(f"--levels {args.levels!r} must be comma-separated integers")
    if not args.levels or args.levels[0] < 1 or args.processes < 1:
        p.error("--levels needs positive client counts and --processes must be >= 1")
    if args.seed_pool > args.images:
        args.seed_pool = args.images
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.time()
    load_before = os.getloadavg()[0]
    with graph_target(args.state_dir, args.allow_load) as (settings, allowed):
        graph = ensure_graph(settings, args, allowed)
        seeds = graph.pop("seeds")
        with GraphStore.connect(settings) as store:
            agent = store.server_agent
            sample = [
                store.neighborhood(s, args.depth, limit=settings.api_max_nodes) for s in seeds[:200]
            ]
        raw_target = {
            "settings": {
                "state_dir": settings.state_dir,
                "neo4j_database": settings.neo4j_database,
                "redis_url": settings.redis_url,
            },
            "limit": settings.api_max_nodes,
        }
        with api_server(settings, args.workers, args.threads) as url:
            api_target = {"url": url}
            print("warming up...", file=sys.stderr)
            top = max(args.levels)
            measure(
                "raw", raw_target, seeds, top, min(args.processes, top), args.warmup, args.depth
            )
            measure(
                "api", api_target, seeds, top, min(args.processes, top), args.warmup, args.depth
            )
            measure(
                "health", api_target, seeds, top, min(args.processes, top), args.warmup, args.depth
            )
            levels = []
            for clients in args.levels:
                shape = (seeds, clients, min(args.processes, clients))
                total = args.requests if clients == top else args.requests_low
                raw_rounds, api_rounds, floor_rounds = [], [], []
                if clients == 1:
                    print(
                        "1 client: baseline, API and floor alternating per seed...", file=sys.stderr
                    )
                    raw_one, api_one, floor_one = paired_single(
                        raw_target, api_target, seeds, total * args.rounds, args.depth
                    )
                    raw_rounds.append(raw_one)
                    api_rounds.append(api_one)
                    floor_rounds.append(floor_one)
                for n in range(args.rounds if clients > 1 else 0):
                    print(
                        f"{clients} clients, round {n + 1}/{args.rounds}: baseline...",
                        file=sys.stderr,
                    )
                    raw_rounds.append(measure("raw", raw_target, *shape, total, args.depth))
                    print(
                        f"{clients} clients, round {n + 1}/{args.rounds}: API...", file=sys.stderr
                    )
                    api_rounds.append(measure("api", api_target, *shape, total, args.depth))
                    print(
                        f"{clients} clients, round {n + 1}/{args.rounds}: floor (GET /health)...",
                        file=sys.stderr,
                    )
                    floor_rounds.append(measure("health", api_target, *shape, total, args.depth))
                raw, api, floor = merge(raw_rounds), merge(api_rounds), merge(floor_rounds)
                levels.append(
                    {
                        "clients": clients,
                        "processes": min(args.processes, clients),
                        "api": api,
                        "baseline": raw,
                        "floor": floor,
                        "ratio_p50": round(api["p50_ms"] / raw["p50_ms"], 2),
                        "ratio_p99": round(api["p99_ms"] / raw["p99_ms"], 2),
                        "ratio_throughput": round(api["requests_per_s"] / raw["requests_per_s"], 2),
                    }
                )
                levels[-1]["ratio_floor_bound"] = floor_bound(levels[-1])
    main_level = levels[-1]
    results: dict[str, Any] = {
        "benchmark": "api",
        **labels(),
        "backend": (
            "neo4j (NEO4J_URI)" if os.environ.get("NEO4J_URI") else "arcadedb-embedded (Bolt)"
        ),
        "server_agent": agent,
        "started_at": int(started),
        "wall_seconds": round(time.time() - started, 1),
        "cpus": os.cpu_count(),
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "python": platform.python_version(),
        "graph": graph,
        "depth": args.depth,
        "mean_nodes": round(sum(len(s.nodes) for s in sample) / len(sample), 1),
        "mean_edges": round(sum(len(s.edges) for s in sample) / len(sample), 1),
        "server": {"workers": args.workers, "threads": args.threads},
        "levels": levels,
        "target_p99_met": main_level["api"]["p99_ms"] <= TARGET_P99_MS,
        "target_overhead_met": (
            main_level["ratio_p50"] <= TARGET_OVERHEAD
            and main_level["ratio_p99"] <= TARGET_OVERHEAD
        ),
        "floor_note": "floor: what any request costs here (GET /health: no graph, same "
        "server, clients and harness)",
        "floor_p99_met": main_level["floor"]["p99_ms"] <= TARGET_P99_MS,
    }
    return publish(results, table(results), args.out)


if __name__ == "__main__":
    main()
