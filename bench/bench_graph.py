"""Graph store benchmark: bulk load speed and 2-hop neighbourhood latency.

What it measures, on a clustered random graph shaped like the catalogue's (every image lists
``--out-degree`` others, mostly from its own cluster of look-alikes):

- load: nodes/s for ``GraphStore.upsert_images`` and edges/s for ``upsert_edges`` at each
  ``--batches`` size (rows per transaction), each into a fresh, empty database; on the
  embedded server also into one without SIMILAR_TO's unique index (the baseline, same run:
  what the index of ``cypher/schema_arcadedb.sql`` costs);
- upgrade (``--upgrade-images N``, embedded server only): a graph of N images loaded without
  SIMILAR_TO's unique index, as an earlier version left it; the time to find pairs stored
  twice when there are none, to build the index over it, and ``ensure_schema`` when
  ``--duplicates`` pairs are stored twice (the failed build, the merge, the build again);
- 2-hop latency: p50/p99 of ``GraphStore.neighborhood(seed, 2, properties=False)`` over
  ``--seeds`` random seeds, against the same-run baseline of one raw driver query
  (``cypher/bench_two_hop.cypher``), with the ratio. Both answers are compared per seed.

By default it starts its own embedded ArcadeDB server in a temporary state folder and stops
it at the end. With ``NEO4J_URI`` set it uses that server instead, and because it has to
empty the graph before each load, it refuses unless ``--allow-clear`` is given.

    python bench/bench_graph.py                     # ~3 minutes on 2 cores
    python bench/bench_graph.py --nodes 2000 --seeds 100   # quick look

Prints a table and writes the figures to ``bench/results/graph.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import string
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString, cast

import neo4j
from _report import labels, publish

from lookalike import cypher, stack
from lookalike.graph import GraphStore
from lookalike.settings import Settings, load_settings

RESULTS = Path(__file__).resolve().parent / "results" / "graph.json"
# The baseline's database drops the index schema_arcadedb.sql builds (ArcadeDB names an index
# after its type and properties).
EDGE_INDEX_DROP = "DROP INDEX `SIMILAR_TO[@out,@in]`"


# --------------------------------------------------------------------------- the graph


@dataclass(frozen=True)
class SyntheticGraph:
    images: list[dict[str, Any]]
    edges: list[tuple[str, str, int]]
    clusters: int


def _image_id(rng: random.Random) -> str:
    # Catalogue ids are 8 lowercase letters/digits.
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=8))


def clustered_graph(
    nodes: int, out_degree: int, cluster_size: int = 50, p_local: float = 0.8, seed: int = 42
) -> SyntheticGraph:
    """Images in clusters of look-alikes; each lists ``out_degree`` distinct others, ranked.

    A listed image comes from the lister's own cluster with probability ``p_local``, else from
    anywhere: the catalogue's similar-image lists are mostly local with some long links, which
    is what makes 2-hop neighbourhoods overlap (and BFS de-duplication matter).
    """
    rng = random.Random(seed)
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < nodes:
        candidate = _image_id(rng)
        if candidate not in seen:
            seen.add(candidate)
            ids.append(candidate)
    now = 1_700_000_000_000
    images = [
        {
            "id": image_id,
            "title": f"Synthetic print {n}",
            "source_id": _image_id(rng),
            "thumbnail_url": f"https://iiif.wellcomecollection.org/image/{image_id}/info.json",
            "license": rng.choice(["pdm", "cc-by", "cc-by-nc"]),
            "aspect_ratio": round(rng.uniform(0.5, 2.0), 3),
            "average_color": f"#{rng.randrange(1 << 24):06x}",
            "phash": f"{rng.getrandbits(64):016x}",
            "dhash": f"{rng.getrandbits(64):016x}",
            "fetched_at": now + n,
            "hashed_at": now + n,
        }
        for n, image_id in enumerate(ids)
    ]
    clusters = [ids[i : i + cluster_size] for i in range(0, len(ids), cluster_size)]
    edges: list[tuple[str, str, int]] = []
    for members in clusters:
        for source in members:
            targets: list[str] = []
            while len(targets) < out_degree:
                pool = members if rng.random() < p_local and len(members) > out_degree else ids
                target = rng.choice(pool)
                if target != source and target not in targets:
                    targets.append(target)
            edges.extend((source, t, rank) for rank, t in enumerate(targets, start=1))
    return SyntheticGraph(images=images, edges=edges, clusters=len(clusters))


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarise(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
        "max_ms": round(max(ms), 3),
    }


# --------------------------------------------------------------------------- servers


@dataclass
class Target:
    """Where the benchmark runs and how it gets an empty database."""

    settings: Settings
    backend: str
    embedded: bool

    def fresh(self, name: str) -> Settings:
        """Settings pointing at an empty graph called ``name`` (a new database, or cleared)."""
        if self.embedded:
            stack.create_database(self.settings, name)
            return load_settings(state_dir=self.settings.state_dir, neo4j_database=name)
        with GraphStore.connect(self.settings) as store:
            store.clear()
        return self.settings

    def drop(self, local: Settings) -> None:
        """Remove what a load left: drop its database, or empty the external graph."""
        if self.embedded:
            if local.neo4j_database:
                stack.drop_database(self.settings, local.neo4j_database)
            return
        with GraphStore.connect(local) as store:
            store.clear()


@contextmanager
def target(allow_clear: bool) -> Iterator[Target]:
    if os.environ.get("NEO4J_URI"):
        if not allow_clear:
            sys.exit(
                "NEO4J_URI is set: this benchmark empties that graph before each load. "
                "Re-run with --allow-clear if that is what you want."
            )
        yield Target(load_settings(), "neo4j (NEO4J_URI)", embedded=False)
        return
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-") as tmp:
        # The graph benchmark needs no Redis: a placeholder URL makes `up` skip starting one.
        settings = load_settings(state_dir=Path(tmp), redis_url="redis://unused:1/0")
        stack.up(settings)
        try:
            yield Target(settings, "arcadedb-embedded (Bolt)", embedded=True)
        finally:
            stack.down(settings)


# --------------------------------------------------------------------------- measurements


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def load(
    store: GraphStore, graph: SyntheticGraph, batch: int, edge_index: bool = True
) -> dict[str, Any]:
    node_s, created = timed(lambda: store.upsert_images(graph.images, batch=batch))
    edge_s, linked = timed(lambda: store.upsert_edges(graph.edges, seen=1, batch=batch))
    if created != len(graph.images) or linked != len(graph.edges):
        raise RuntimeError(
            f"load at batch {batch} wrote {created} images / {linked} edges, expected "
            f"{len(graph.images)} / {len(graph.edges)}"
        )
    return {
        "batch": batch,
        "edge_index": edge_index,
        "node_seconds": round(node_s, 3),
        "edge_seconds": round(edge_s, 3),
        "nodes_per_s": round(len(graph.images) / node_s, 1),
        "edges_per_s": round(len(graph.edges) / edge_s, 1),
    }


def two_hop(store: GraphStore, seeds: list[str]) -> dict[str, Any]:
    """Time the store's 2-hop walk and the raw one-query baseline on the same seeds.

    The two alternate per seed (and swap which goes first), so server caches and JIT state
    favour neither. Their answers are compared: the baseline may include the seed itself
    (a->x->a when both list each other), so the seed is left out of both sides.
    """
    query = cast(LiteralString, cypher.load("bench_two_hop"))

    def raw(seed: str) -> set[str]:
        records, _, _ = store.driver.execute_query(
            query,
            {"id": seed},
            database_=store.database,
            routing_=neo4j.RoutingControl.READ,
        )
        return {r["id"] for r in records}

    def walk(seed: str) -> set[str]:
        return set(store.neighborhood(seed, 2, properties=False).depth)

    for seed in seeds[:20]:  # warm-up, not timed
        walk(seed)
        raw(seed)
    store_times: list[float] = []
    raw_times: list[float] = []
    sizes: list[int] = []
    mismatches: list[str] = []
    for n, seed in enumerate(seeds):
        order = [("store", walk), ("raw", raw)]
        if n % 2:
            order.reverse()
        answers: dict[str, set[str]] = {}
        for name, fn in order:
            seconds, answers[name] = timed(lambda fn=fn, seed=seed: fn(seed))
            (store_times if name == "store" else raw_times).append(seconds)
        if answers["store"] - {seed} != answers["raw"] - {seed}:
            mismatches.append(seed)
        sizes.append(len(answers["store"] - {seed}))
    store_stats, raw_stats = summarise(store_times), summarise(raw_times)
    return {
        "seeds": len(seeds),
        "mean_neighbourhood": round(sum(sizes) / len(sizes), 1),
        "store": store_stats,
        "raw": raw_stats,
        "ratio_p50": round(store_stats["p50_ms"] / raw_stats["p50_ms"], 2),
        "ratio_p99": round(store_stats["p99_ms"] / raw_stats["p99_ms"], 2),
        "mismatches": len(mismatches),
        "mismatch_examples": mismatches[:5],
    }


def edge_index_ratio(loads: list[dict[str, Any]]) -> dict[str, float]:
    """Per batch size, edges/s with SIMILAR_TO's unique index over edges/s without it."""
    by = {(r["batch"], r["edge_index"]): r["edges_per_s"] for r in loads}
    return {
        str(batch): round(by[(batch, True)] / by[(batch, False)], 2)
        for batch, indexed in by
        if indexed and (batch, False) in by
    }


def load_without_edge_index(where: Target, graph: SyntheticGraph, batch: int) -> dict[str, Any]:
    """The same load into a database whose SIMILAR_TO edges have no unique index."""
    local = where.fresh(f"bench_noindex{batch}")
    with GraphStore.connect(local) as store:
        store.ensure_schema()
        admin = where.settings.embedded()["graph"]
        drop_edge_index(admin, local.neo4j_database or "")
        row = load(store, graph, batch, edge_index=False)
    where.drop(local)
    return row


def upgrade(where: Target, images: int, duplicates: int, seed: int) -> dict[str, Any]:
    """Build SIMILAR_TO's unique index over a graph written without it, clean and with pairs
    stored twice."""
    graph = clustered_graph(images, 5, 50, seed=seed)
    local = where.fresh("bench_upgrade")
    admin, database = where.settings.embedded()["graph"], local.neo4j_database or ""
    with GraphStore.connect(local) as store:
        store.ensure_schema()
        drop_edge_index(admin, database)
        store.upsert_images(graph.images, batch=5000)
        store.upsert_edges(graph.edges, seen=1, batch=5000)
        find_s, none = timed(store.merge_duplicate_edges)
        build_s, _ = timed(store.ensure_schema)
        drop_edge_index(admin, database)
        twice = random.Random(seed).sample(graph.edges, duplicates)
        store.driver.execute_query(
            cypher.load("bench_edges_again"),
            rows=[{"source": a, "target": b, "rank": r} for a, b, r in twice],
            database_=database,
        )
        merged_s, _ = timed(store.ensure_schema)
        left = store.counts()["edges"]
    where.drop(local)
    if none or left != len(graph.edges):
        raise RuntimeError(f"upgrade: found {none} on a clean graph, {left} edges left")
    return {
        "images": len(graph.images),
        "edges": len(graph.edges),
        "duplicates": duplicates,
        "find_seconds": round(find_s, 1),
        "build_seconds": round(build_s, 1),
        "merge_and_build_seconds": round(merged_s, 1),
    }


def drop_edge_index(admin: dict[str, Any], database: str, tries: int = 60) -> None:
    """Drop SIMILAR_TO's unique index; right after a build the server may still hold its files,
    so a refusal is tried again."""
    for attempt in range(tries):
        try:
            stack.database_command(admin, database, EDGE_INDEX_DROP)
            return
        except stack.StackError:
            if attempt == tries - 1:
                raise
            time.sleep(2)


# --------------------------------------------------------------------------- report


def table(results: dict[str, Any]) -> str:
    g = results["graph"]
    lines = [
        f"graph benchmark on {results['backend']}: {g['nodes']:,} images, {g['edges']:,} "
        f"SIMILAR_TO edges, {g['clusters']} clusters",
        f"{results['cpus']} CPUs, load average {results['loadavg_1min'][0]} at start and "
        f"{results['loadavg_1min'][1]} at end",
        "",
        "load (fresh database each)  edge index  rows/tx    nodes/s    edges/s   node s   edge s",
    ]
    for row in results["load"]:
        lines.append(
            f"  upsert_images/upsert_edges {'yes' if row['edge_index'] else 'no (baseline)':>13} "
            f"{row['batch']:>8,} {row['nodes_per_s']:>10,.0f} {row['edges_per_s']:>10,.0f} "
            f"{row['node_seconds']:>8.2f} {row['edge_seconds']:>8.2f}"
        )
    for batch, ratio in results.get("edge_index_ratio", {}).items():
        lines.append(f"  edges/s with the index / without, {batch} rows/tx: {ratio:.2f}")
    u = results.get("upgrade")
    if u:
        lines += [
            "",
            f"upgrade: {u['images']:,} images, {u['edges']:,} edges written without the edge index",
            f"  find pairs stored twice (none)                {u['find_seconds']:>8.1f} s",
            f"  build the index                               {u['build_seconds']:>8.1f} s",
            f"  ensure_schema with {u['duplicates']:,} pairs stored twice  "
            f"{u['merge_and_build_seconds']:>8.1f} s",
        ]
    h = results["two_hop"]
    lines += [
        "",
        f"2-hop neighbourhood, {h['seeds']} random seeds "
        f"(mean {h['mean_neighbourhood']} images)     p50 ms    p99 ms   mean ms",
        f"  GraphStore.neighborhood(seed, 2, properties=False) "
        f"{h['store']['p50_ms']:>8.2f} {h['store']['p99_ms']:>9.2f} {h['store']['mean_ms']:>9.2f}",
        f"  baseline: raw bench_two_hop query               "
        f"{h['raw']['p50_ms']:>11.2f} {h['raw']['p99_ms']:>9.2f} {h['raw']['mean_ms']:>9.2f}",
        f"  ratio store/baseline                            "
        f"{h['ratio_p50']:>11.2f} {h['ratio_p99']:>9.2f}",
        f"  answers differing between the two: {h['mismatches']}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=10_000)
    p.add_argument("--out-degree", type=int, default=5)
    p.add_argument("--cluster-size", type=int, default=50)
    p.add_argument("--batches", default="1000,5000", help="rows per transaction, comma-separated")
    p.add_argument("--seeds", type=int, default=500, help="random seeds for the 2-hop timing")
    p.add_argument("--seed", type=int, default=42, help="random seed of the generator")
    p.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON figures")
    p.add_argument(
        "--upgrade-images",
        type=int,
        default=0,
        help="also time building SIMILAR_TO's unique index over a graph of this many images "
        "written without it (embedded server; 200000: ~5 minutes)",
    )
    p.add_argument("--duplicates", type=int, default=1000, help="pairs stored twice there")
    p.add_argument(
        "--allow-clear",
        action="store_true",
        help="with NEO4J_URI set: allow emptying that graph before each load",
    )
    args = p.parse_args(argv)
    try:
        args.batch_sizes = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batches {args.batches!r} must be comma-separated integers")
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        p.error("--batches needs at least one positive size")
    if args.nodes <= args.out_degree:
        p.error("--nodes must exceed --out-degree")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    graph = clustered_graph(args.nodes, args.out_degree, args.cluster_size, seed=args.seed)
    started = time.time()
    load_before = os.getloadavg()[0]
    with target(args.allow_clear) as where:
        # Warm the server (JVM JIT on ArcadeDB) on a small graph, so the first measured
        # batch size is not penalised for running first.
        warm = clustered_graph(1000, args.out_degree, args.cluster_size, seed=args.seed + 1)
        local = where.fresh("bench_warmup")
        with GraphStore.connect(local) as store:
            store.ensure_schema()
            load(store, warm, max(args.batch_sizes))
        where.drop(local)

        loads = []
        for n, batch in enumerate(args.batch_sizes):
            if where.embedded:
                loads.append(load_without_edge_index(where, graph, batch))
                print(f"loaded without the edge index: {loads[-1]}", file=sys.stderr)
            local = where.fresh(f"bench_load{n}")
            last = n == len(args.batch_sizes) - 1
            with GraphStore.connect(local) as store:
                store.ensure_schema()
                loads.append(load(store, graph, batch))
                print(f"loaded at {batch} rows/tx: {loads[-1]}", file=sys.stderr)
                if last:  # time traversals on the full graph just loaded
                    rng = random.Random(args.seed)
                    seeds = [img["id"] for img in rng.sample(graph.images, args.seeds)]
                    hops = two_hop(store, seeds)
                    agent = store.server_agent
            if not last:
                where.drop(local)
        where.drop(local)
        upgraded = None
        if args.upgrade_images and where.embedded:
            upgraded = upgrade(where, args.upgrade_images, args.duplicates, args.seed)
            print(f"upgrade: {upgraded}", file=sys.stderr)
    results = {
        "benchmark": "graph",
        **labels(),
        "backend": where.backend,
        "server_agent": agent,
        "started_at": int(started),
        "wall_seconds": round(time.time() - started, 1),
        "cpus": os.cpu_count(),
        # The machine may be shared: the 1-minute load average says how noisy the run was.
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "python": platform.python_version(),
        "graph": {
            "nodes": len(graph.images),
            "edges": len(graph.edges),
            "clusters": graph.clusters,
            "out_degree": args.out_degree,
            "cluster_size": args.cluster_size,
        },
        "load": loads,
        "edge_index_ratio": edge_index_ratio(loads),
        "upgrade": upgraded,
        "two_hop": hops,
        "warmup": {"nodes": len(warm.images), "edges": len(warm.edges)},
    }
    return publish(results, table(results), args.out)


if __name__ == "__main__":
    main()
