"""Explorer benchmark: how soon a person sees a neighbourhood drawn, in a real Chromium, against
what any page and the API call underneath cost on the same server in the same run.

What it measures, over ``--runs`` cold page loads (a new browser context each: empty cache)
of ``/#/image/SEED/DEPTH``, each run alternating with its baselines:

- first paint: from navigation start to the ``graph-drawn`` mark the page sets once the
  neighbourhood's nodes and edges are in the SVG (thumbnails still loading);
- thumbnails: navigation start to the last thumbnail's response end;
- baselines: a cold load of ``/health`` in the same browser (what any page costs here), and the
  neighbourhood call the page makes (``layout=spring``) and the same call without the layout,
  from Python over HTTP (the API's share, and the layout's).

Graph: the demo's (``--state-dir`` of a ``lookalike demo`` run, or a fresh demo run of its own
when none is given) or a synthetic clustered graph of ``--images`` images (bench_graph.py's
generator) loaded into an embedded ArcadeDB of its own; seeds are the demo's seed or random
images. Prints a table and writes the figures to ``bench/results/explorer.json``.

    python bench/bench_explorer.py                                  # the demo graph (~2 min)
    python bench/bench_explorer.py --state-dir .lookalike           # after `lookalike demo`
    python bench/bench_explorer.py --images 100000 --keep /tmp/big  # 100k images (~10 min)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _report import publish  # noqa: E402
from bench_graph import clustered_graph, summarise  # noqa: E402

from lookalike import stack  # noqa: E402
from lookalike.graph import GraphStore  # noqa: E402
from lookalike.settings import Settings, load_settings  # noqa: E402
from lookalike_cli import children  # noqa: E402
from lookalike_cli.children import child_env  # noqa: E402
from lookalike_cli.main import child_command  # noqa: E402

RESULTS = REPO / "bench" / "results" / "explorer.json"
QUIET = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--metrics-recording-only",
    "--no-first-run",
    "--no-pings",
]


def git_commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def chromium() -> str:
    for name in (os.environ.get("LOOKALIKE_CHROMIUM"), "chromium-headless-shell", "chromium"):
        if name and (found := shutil.which(name)):
            return found
    sys.exit("no Chromium: run `bash scripts/setup.sh` or set LOOKALIKE_CHROMIUM")


@contextlib.contextmanager
def demo_state(state_dir: Path | None) -> Iterator[tuple[Settings, list[str]]]:
    """A crawled demo graph: the one in ``state_dir``, or a fresh `lookalike demo` run."""
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-explorer-") as tmp:
        state = state_dir or Path(tmp)
        if state_dir is None:
            print("running `lookalike demo --no-serve` for a demo graph...", file=sys.stderr)
            env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")}
            env["LOOKALIKE_STATE_DIR"] = str(state)
            subprocess.run(
                child_command("demo", "--no-serve", "--port", "0"),
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        settings = load_settings(state_dir=state)
        stack.up(settings)
        try:
            with GraphStore.connect(settings) as store:
                ids = sorted(image["id"] for image, _ in store.iter_export())
            if not ids:
                sys.exit(f"the graph of {state} is empty: run `lookalike demo` there first")
            yield settings, random.Random(7).sample(ids, min(20, len(ids)))
        finally:
            if state_dir is None:
                stack.down(settings)


@contextlib.contextmanager
def synthetic_state(
    images: int, keep: Path | None, seed: int
) -> Iterator[tuple[Settings, list[str]]]:
    """A clustered graph of ``images`` images (5 listed each), loaded unless already there."""
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-explorer-") as tmp:
        state = keep or Path(tmp)
        settings = load_settings(state_dir=state, redis_url="redis://unused:1/0")
        stack.up(settings)
        try:
            graph = clustered_graph(images, 5, seed=seed)
            with GraphStore.connect(settings) as store:
                store.ensure_schema()
                if store.counts()["images"] != images:
                    print(
                        f"loading {images:,} images and {len(graph.edges):,} edges...",
                        file=sys.stderr,
                    )
                    store.clear()
                    store.upsert_images(graph.images, batch=5000)
                    store.upsert_edges(graph.edges, seen=1, batch=5000)
                if not (settings.index_dir / "CURRENT").exists():
                    # As in service: the indexer sidecar keeps an index of hashes and titles.
                    from services.indexer.service import Indexer, IndexerConfig

                    print("building the index...", file=sys.stderr)
                    Indexer(store, IndexerConfig.from_settings(settings)).build_once("bench")
            rng = random.Random(seed)
            yield settings, [rng.choice(graph.images)["id"] for _ in range(20)]
        finally:
            stack.down(settings)


@contextlib.contextmanager
def api_server(settings: Settings) -> Iterator[str]:
    port = stack.free_port()
    log = Path(tempfile.gettempdir()) / f"bench-explorer-api-{port}.log"
    try:
        url, proc = children.serve(child_env(settings), log, port)
    except children.ChildFailed as e:
        sys.exit(str(e))
    try:
        yield url
    finally:
        children.stop(proc)


def page_load(browser: Any, url: str, until_drawn: bool) -> dict[str, float]:
    """One cold load: a fresh context, so nothing is cached."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        page.goto(url)
        if not until_drawn:
            page.wait_for_load_state("load")
            return {
                "load_ms": page.evaluate(
                    "performance.getEntriesByType('navigation')[0].loadEventEnd"
                )
            }
        page.wait_for_function(
            "() => performance.getEntriesByName('graph-drawn').length > 0", timeout=60_000
        )
        page.wait_for_load_state("networkidle", timeout=180_000)
        return page.evaluate("""() => {
            const thumbs = performance.getEntriesByType('resource')
                .filter(e => e.name.includes('/thumbnail'));
            return {
                first_paint_ms: performance.getEntriesByName('graph-drawn')[0].startTime,
                thumbnails_ms: Math.max(0, ...thumbs.map(e => e.responseEnd)),
                nodes: document.querySelectorAll('#graph .node').length,
                thumbnails: thumbs.length,
            };
        }""")
    finally:
        context.close()


def api_call(url: str, seed: str, depth: int, layout: str) -> float:
    start = time.perf_counter()
    r = requests.get(
        f"{url}/images/{seed}/neighborhood",
        params={"depth": depth, "layout": layout, "limit": 150},
        timeout=60,
    )
    r.raise_for_status()
    return (time.perf_counter() - start) * 1000


def measure(url: str, seeds: list[str], depth: int, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    series: dict[str, list[float]] = {
        k: []
        for k in (
            "first_paint_ms",
            "thumbnails_ms",
            "blank_page_ms",
            "api_layout_ms",
            "api_plain_ms",
        )
    }
    sizes: list[int] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=QUIET)
        page_load(browser, f"{url}/#/image/{seeds[0]}/{depth}", True)  # warm the server
        for run in range(runs):
            seed = seeds[run % len(seeds)]
            drawn = page_load(browser, f"{url}/#/image/{seed}/{depth}", True)
            series["first_paint_ms"].append(drawn["first_paint_ms"])
            series["thumbnails_ms"].append(drawn["thumbnails_ms"])
            sizes.append(int(drawn["nodes"]))
            series["blank_page_ms"].append(page_load(browser, f"{url}/health", False)["load_ms"])
            series["api_layout_ms"].append(api_call(url, seed, depth, "spring"))
            series["api_plain_ms"].append(api_call(url, seed, depth, "none"))
        browser.close()
    out: dict[str, Any] = {k: summarise([v / 1000 for v in vals]) for k, vals in series.items()}
    out["nodes_drawn"] = {"min": min(sizes), "max": max(sizes)}
    return out


def table(r: dict[str, Any]) -> str:
    m = r["measured"]
    rows = [
        ("first paint (graph drawn)", "first_paint_ms"),
        ("all thumbnails loaded", "thumbnails_ms"),
        ("baseline: a blank page (/health)", "blank_page_ms"),
        ("the page's API call (layout=spring)", "api_layout_ms"),
        ("the same call without layout", "api_plain_ms"),
    ]
    lines = [
        f"explorer benchmark, {r['date']} at {r['commit']}: {r['graph']}, depth {r['depth']}, "
        f"{r['runs']} cold loads; {m['nodes_drawn']['min']}-{m['nodes_drawn']['max']} nodes "
        f"drawn; load average {r['loadavg_1min'][0]} at start, {r['loadavg_1min'][1]} at end",
        "",
        f"{'':40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
    ]
    for label, key in rows:
        s = m[key]
        lines.append(f"{label:40} {s['p50_ms']:8.0f} {s['p99_ms']:8.0f} {s['max_ms']:8.0f}")
    fp = m["first_paint_ms"]["p50_ms"]
    lines += [
        "",
        f"first paint p50 = {fp / m['blank_page_ms']['p50_ms']:.1f}x a blank page; "
        f"target: under 1000 ms -> {'met' if fp < 1000 else 'NOT met'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, help="a state folder `lookalike demo` filled")
    parser.add_argument(
        "--images", type=int, help="a synthetic graph of this many images instead of the demo's"
    )
    parser.add_argument("--keep", type=Path, help="with --images: keep the graph here")
    parser.add_argument("--depth", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    source = (
        synthetic_state(args.images, args.keep, args.seed)
        if args.images
        else demo_state(args.state_dir)
    )
    with source as (settings, seeds), api_server(settings) as url:
        measured = measure(url, seeds, args.depth, args.runs)
    results = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "commit": git_commit(),
        "graph": f"synthetic {args.images:,} images" if args.images else "the demo's",
        "depth": args.depth,
        "runs": args.runs,
        "measured": measured,
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    return publish(results, table(results), args.out)


if __name__ == "__main__":
    main()
