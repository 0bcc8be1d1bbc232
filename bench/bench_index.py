"""Index benchmark: build time, size, query latency and near-duplicate recall at 10k-1M hashes.

    python bench/bench_index.py --cache /tmp/bench-hashes   # 10k-1M: ~50 min at load ~13 on
        # 2 shared cores (generating the 1M hashes 18 min, once; the 1M build ~10 min)
    python bench/bench_index.py --sizes 10000,30000,100000,200000 --cache /tmp/bench-hashes
        # ~5 min once the hashes are cached

Hashes come from services/indexer/synthetic.py: the five kinds of natural-image-like pictures,
half of them sharing layouts, plus 1% planted near-duplicates (recompressed, resized, cropped,
rotated, brightened copies, hashed again). Every size is built as the indexer builds it: all
five kinds, each with its Annoy index and multi-index tables (build seconds and megabytes per
part). Queries are the planted copies' phashes. Measured in the same process:

- scan:        the plain exact numpy scan (bits.ExactScanner: XOR, bitwise_count, <=,
               nonzero into preallocated buffers; positions only): the baseline and the truth
- scan+ids:    the same scan answering what the reader answers (ids and distances, nearest
               first): what a reader that only scanned with numpy would cost
- kernel+ids:  the reader's own compiled scan (popscan.FusedScanner, C) answering the same:
               the reader without its parsing, snapshot and Match objects
- reader:      IndexReader.within(radius 10) as the API and the CLI open it
- tables:      the same with the multi-index tables at every size (exact_scan_max=0), which
               the reader uses only past reader.EXACT_SCAN_MAX hashes: where they win
- annoy@k:     Annoy's hamming index alone, top 20 re-ranked, at several search_k
- nearest:     IndexReader.nearest(k=10), against scan-nearest (ExactScanner.nearest + ids)
               and kernel-nearest (FusedScanner.nearest + ids)

Each method answers all queries in a block, the blocks taking turns three times.
Recall: "planted" = planted copies within distance 10 of their original whose original was
returned; "all" = every hash within 10 of a query (its own row excluded); for nearest, the
share of the 10 returned that are among the true 10 nearest (ties at the 10th distance
count). Targets: the reader never slower than the scan at any size; recall 1. Three ratios
are printed: against the bare numpy scan (positions only; scan-nearest for nearest), the
numpy scan returning the same answer (scan+ids) and the reader's kernel returning the same
answer (kernel+ids; kernel-nearest for nearest).
Results go to bench/results/index.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import heading, labels, load_average, publish
from annoy import AnnoyIndex

from lookalike.hashing import HASH_KINDS
from lookalike.settings import load_settings
from services.indexer.bits import ExactScanner, bit_rows, to_hex
from services.indexer.build import build_annoy, build_generation
from services.indexer.popscan import FusedScanner
from services.indexer.reader import IndexReader
from services.indexer.synthetic import make_hashes
from services.indexer.table import HashTable

RADIUS = 10
RESULTS = Path(__file__).resolve().parent / "results" / "index.json"


def _dir_size(path: Path, pattern: str = "*") -> int:
    return sum(f.stat().st_size for f in path.glob(pattern) if f.is_file())


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1e6, q))


def _hashes(n: int, seed: int, cache: Path | None, kinds: tuple[str, ...]):
    if cache is not None:
        file = cache / f"synthetic-{n}-{seed}-{len(kinds)}kinds.npz"
        if file.exists():
            z = np.load(file)
            return {k: z[k] for k in kinds}, int(z["n_base"]), z["variant_of"]
    t = time.perf_counter()
    s = make_hashes(n, kinds=kinds, seed=seed)
    print(
        f"  generated {s.size} hashes of {len(kinds)} kinds in {time.perf_counter() - t:.0f}s",
        flush=True,
    )
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache / f"synthetic-{n}-{seed}-{len(kinds)}kinds.npz",
            n_base=s.n_base,
            variant_of=s.variant_of,
            **s.hashes,
        )
    return s.hashes, s.n_base, s.variant_of


def bench_size(
    n: int,
    queries: int,
    trees: int,
    search_ks: list[int],
    seed: int,
    cache: Path | None,
    kinds: tuple[str, ...],
) -> dict:
    print(f"\n== {n:,} hashes x {len(kinds)} kinds ==", flush=True)
    hashes, n_base, variant_of = _hashes(n, seed, cache, kinds)
    values = hashes["phash"]
    ids = np.array([f"i{i:07d}" for i in range(len(values))])
    work = Path(tempfile.mkdtemp(prefix="bench-index-"))
    try:
        table = HashTable.from_arrays(ids, hashes)
        result = build_generation(work, table, trees=trees)
        gen = result.path
        meta = json.loads((gen / "meta.json").read_text())["kinds"]
        build = {
            k: {
                "annoy_s": meta[k]["annoy_seconds"],
                "multindex_s": meta[k]["multindex_seconds"],
                "annoy_mb": _dir_size(gen, f"{k}.ann") / 1e6,
                "multindex_mb": _dir_size(gen, f"{k}.mih-*") / 1e6,
            }
            for k in kinds
        }
        total_mb = _dir_size(gen) / 1e6
        annoy_s = sum(b["annoy_s"] for b in build.values())
        annoy_mb = sum(b["annoy_mb"] for b in build.values())
        print(
            f"  build {result.seconds:.1f}s, of which Annoy {annoy_s:.1f}s; size "
            f"{total_mb:.0f} MB, of which Annoy {annoy_mb:.0f} MB",
            flush=True,
        )
        for k, b in build.items():
            print(
                f"    {k:<10} annoy {b['annoy_s']:>6.2f}s {b['annoy_mb']:>6.1f} MB   "
                f"multi-index {b['multindex_s']:>6.2f}s {b['multindex_mb']:>6.1f} MB"
            )

        reader = IndexReader(work, None, search_k=search_ks[0])  # as the API opens it
        tables = IndexReader(work, None, search_k=search_ks[0], exact_scan_max=0)
        ann_file = gen / "phash.ann"
        if not ann_file.exists():  # the indexer built none at this size: measure one anyway
            ann_file = work / "bench-phash.ann"
            build_annoy(values, 64, trees, ann_file)
        annoy = AnnoyIndex(64, "hamming")
        annoy.load(str(ann_file))
        exact = ExactScanner(values)
        fused = FusedScanner(values)
        rng = np.random.default_rng(seed)
        q_rows = np.sort(
            rng.choice(
                np.arange(n_base, len(values)),
                size=min(queries, len(values) - n_base),
                replace=False,
            )
        )

        lat: dict[str, list[float]] = {
            "scan": [],
            "scan+ids": [],
            "kernel+ids": [],
            "reader": [],
            "tables": [],
            "scan-nearest": [],
            "kernel-nearest": [],
            "nearest": [],
        }
        lat.update({f"annoy@{k}": [] for k in search_ks})
        id_of = {i: row for row, i in enumerate(ids.tolist())}
        hexes = [to_hex("phash", int(values[row])) for row in q_rows.tolist()]
        vectors = bit_rows(values[q_rows]).tolist()
        id_list = ids  # numpy: fancy-indexed like the reader's mapped ids

        def run_scan(j: int) -> set[int]:
            return set(exact.within(int(values[q_rows[j]]), RADIUS)[0].tolist())

        def run_scan_ids(j: int) -> set[int]:
            pos, dist = exact.within(int(values[q_rows[j]]), RADIUS)
            order = np.lexsort((pos, dist))
            found = list(zip(id_list[pos[order]].tolist(), dist[order].tolist(), strict=True))
            return {id_of[i] for i, _ in found}

        def run_kernel_ids(j: int) -> set[int]:
            pos, dist = fused.within(int(values[q_rows[j]]), RADIUS)  # nearest first
            found = list(zip(id_list[pos].tolist(), dist.tolist(), strict=True))
            return {id_of[i] for i, _ in found}

        def run_reader(j: int) -> set[int]:
            got = reader.within("phash", hash=hexes[j], radius=RADIUS)
            return {id_of[m.id] for m in got}

        def run_tables(j: int) -> set[int]:
            got = tables.within("phash", hash=hexes[j], radius=RADIUS)
            return {id_of[m.id] for m in got}

        def run_scan_nearest(j: int) -> set[int]:
            pos, _ = exact.nearest(int(values[q_rows[j]]), 10)
            return {id_of[i] for i in id_list[pos].tolist()}

        def run_kernel_nearest(j: int) -> set[int]:
            pos, _ = fused.nearest(int(values[q_rows[j]]), 10)
            return {id_of[i] for i in id_list[pos].tolist()}

        def run_nearest(j: int) -> set[int]:
            return {id_of[m.id] for m in reader.nearest("phash", hash=hexes[j], k=10)}

        def run_annoy(k: int):
            def run(j: int) -> set[int]:
                cand = np.asarray(
                    annoy.get_nns_by_vector(vectors[j], 20, search_k=k), dtype=np.int64
                )
                d = np.bitwise_count(values[cand] ^ values[q_rows[j]])
                return set(cand[d <= RADIUS].tolist())

            return run

        methods = {
            "scan": run_scan,
            "scan+ids": run_scan_ids,
            "kernel+ids": run_kernel_ids,
            "reader": run_reader,
            "tables": run_tables,
            "scan-nearest": run_scan_nearest,
            "kernel-nearest": run_kernel_nearest,
            "nearest": run_nearest,
        }
        methods.update({f"annoy@{k}": run_annoy(k) for k in search_ks})
        answers: dict[str, list[set[int]]] = {}
        # Each method answers every query in a block (as a server busy with that kind of
        # query would), and the blocks take turns three times, so load from other processes
        # on this shared machine falls on every method alike.
        for _ in range(3):
            for name, run in methods.items():
                out = []
                for j in range(len(q_rows)):
                    t = time.perf_counter()
                    out.append(run(j))
                    lat[name].append(time.perf_counter() - t)
                answers[name] = out

        within_methods = [m for m in lat if "nearest" not in m]
        found = {m: [0, 0] for m in within_methods}  # all-neighbour recall
        planted = {m: [0, 0] for m in within_methods}
        nearest_hits = [0, 0]
        for j, row in enumerate(q_rows.tolist()):
            truth = answers["scan"][j] - {row}
            original = int(variant_of[row - n_base])
            for m in found:
                hits = answers[m][j]
                found[m][0] += len(truth & hits)
                found[m][1] += len(truth)
                if original in truth:
                    planted[m][0] += int(original in hits)
                    planted[m][1] += 1
            # nearest: right when no returned item is farther than the true 10th nearest
            d = np.bitwise_count(values ^ values[row])
            tenth = np.sort(d)[min(9, len(d) - 1)]
            got = answers["nearest"][j]
            nearest_hits[0] += sum(1 for i in got if d[i] <= tenth)
            nearest_hits[1] += len(got)

        rows = {}
        print(
            f"  {'method':<14} {'p50 us':>8} {'p99 us':>8} {'vs scan':>8} "
            f"{'vs same answer':>15} {'vs same kernel':>15} {'recall planted':>15} "
            f"{'recall all':>11}"
        )
        p50 = {m: float(np.median(times)) for m, times in lat.items()}
        for m, times in lat.items():
            base = p50["scan-nearest" if "nearest" in m else "scan"]
            # the plain numpy scan and the reader's kernel, answering what the method answers
            same = {"reader": "scan+ids", "tables": "scan+ids", "nearest": "scan-nearest"}.get(m)
            kernel = {"reader": "kernel+ids", "tables": "kernel+ids"}.get(m)
            kernel = kernel or {"nearest": "kernel-nearest"}.get(m)
            vs_same = p50[same] / p50[m] if same else None
            vs_kernel = p50[kernel] / p50[m] if kernel else None
            if m == "nearest":
                rec_p, rec_a = None, nearest_hits[0] / max(1, nearest_hits[1])
            else:
                rec_p = planted[m][0] / planted[m][1] if m in planted and planted[m][1] else None
                rec_a = found[m][0] / found[m][1] if m in found and found[m][1] else None
            speed = base / p50[m]
            rows[m] = {
                "p50_us": _pct(times, 50),
                "p99_us": _pct(times, 99),
                "speedup": speed,
                "speedup_same_answer": vs_same,
                "speedup_same_kernel": vs_kernel,
                "recall_planted": rec_p,
                "recall_all": rec_a,
            }
            print(
                f"  {m:<14} {_pct(times, 50):>8.1f} {_pct(times, 99):>8.0f} {speed:>7.2f}x "
                f"{'' if vs_same is None else f'{vs_same:.2f}x':>15} "
                f"{'' if vs_kernel is None else f'{vs_kernel:.2f}x':>15} "
                f"{'' if rec_p is None else f'{rec_p:.4f}':>15} "
                f"{'' if rec_a is None else f'{rec_a:.4f}':>11}",
                flush=True,
            )
        print(
            f"  ({planted['scan'][1]} planted copies within {RADIUS} among "
            f"{len(q_rows)} queries; {found['scan'][1]} neighbours within {RADIUS} in all; "
            f"nearest compared with scan-nearest)"
        )
        return {
            "n": len(values),
            "kinds": list(kinds),
            "build_seconds": result.seconds,
            "build": build,
            "total_mb": total_mb,
            "annoy_seconds": annoy_s,
            "annoy_mb": annoy_mb,
            "trees": trees,
            "queries": len(q_rows),
            "methods": rows,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(report: dict) -> str:
    lines = [
        heading("index", report),
        "",
        "hashes     build s (Annoy)   MB (Annoy)   scan us  scan+ids us  kernel+ids us  "
        "reader us (x scan, x scan+ids, x kernel+ids)  recall  tables us  scan-nearest us  "
        "kernel-nearest us  nearest us (x scan-nearest, x kernel-nearest)  recall",
    ]
    for r in report["sizes"]:
        m = r["methods"]
        rd, nr = m["reader"], m["nearest"]
        lines.append(
            f"{r['n']:>9,} {r['build_seconds']:>7.1f} ({r['annoy_seconds']:.1f}) "
            f"{r['total_mb']:>7.0f} ({r['annoy_mb']:.0f}) {m['scan']['p50_us']:>8.1f} "
            f"{m['scan+ids']['p50_us']:>8.1f} {m['kernel+ids']['p50_us']:>8.1f} "
            f"{rd['p50_us']:>12.1f} ({rd['speedup']:.2f}, {rd['speedup_same_answer']:.2f}, "
            f"{rd['speedup_same_kernel']:.2f}) {rd['recall_all']:.3f} "
            f"{m['tables']['p50_us']:>8.1f} {m['scan-nearest']['p50_us']:>12.1f} "
            f"{m['kernel-nearest']['p50_us']:>8.1f} "
            f"{nr['p50_us']:>11.1f} ({nr['speedup']:.2f}, {nr['speedup_same_kernel']:.2f}) "
            f"{nr['recall_all']:.3f}"
        )
    return "\n".join(lines)


def main() -> None:
    settings = load_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,30000,100000,200000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument(
        "--kinds", default=",".join(HASH_KINDS), help="hash kinds built (queries use phash)"
    )
    parser.add_argument("--trees", type=int, default=settings.index_trees)
    parser.add_argument(
        "--search-k",
        default=f"{settings.index_search_k},500,10000",
        help="Annoy search_k values to measure (comma separated)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="keep generated hashes here and reuse them (e.g. bench/results)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the figures")
    args = parser.parse_args()
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if "phash" not in kinds:
        parser.error("--kinds must include phash (the queries use it)")
    search_ks = [int(x) for x in args.search_k.split(",")]
    load_before, run = load_average(), labels()  # what runs is the commit at the start
    sizes = [
        bench_size(int(n), args.queries, args.trees, search_ks, args.seed, args.cache, kinds)
        for n in args.sizes.split(",")
    ]
    report = {
        "benchmark": "index",
        **run,
        "loadavg_1min": [load_before, load_average()],
        "sizes": sizes,
    }
    publish(report, "\n" + table(report), args.out)


if __name__ == "__main__":
    main()
