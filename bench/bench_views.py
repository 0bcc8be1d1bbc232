"""Verification views on disk: what each encoding costs and whether it moves any verdict, and
what local evidence costs the indexer at collection scale.

    python bench/bench_views.py --cache /tmp/lk/pictures-views            # both parts
    python bench/bench_views.py --part scale --replicate 2               # the indexer only

Pictures, families, planted edits, hashes and embeddings are bench_quality.py's (its caches).

1. **Encodings.** Every picture's view (lookalike.localmatch.view of its thumbnail, as the
   workers make it) is encoded as the view store could write it: PNG at several levels (the
   store's: level 3), WebP lossless, grey JPEG at quality 90 and 95, WebP lossy at 90 and
   95. Per view: bytes (and against PNG 3 over the same views), encode and decode ms (over
   every ``--sample``-th view for the encodings not judged). A lossless encoding decodes to
   the same pixels (checked), so it changes no verdict. For each lossy one judged
   (``--lossy``, jpeg95 by default: each costs a few minutes) local evidence is found again
   from the decoded views over the pairs the indexer asks it for (those perfect local
   evidence would claim: ``duplicates.verify_pairs``), and the pairs' inliers, cell score
   and verdict (``verify.decide`` with the declared thresholds, ``LOCAL_MIN_SCORE`` and
   ``LOCAL_CLAIM_INLIERS``) compared with the lossless views', on the tuning pictures (met,
   blank; ``--tune ""``: not) and on the held-out ones (portraits, wallpapers, skimage),
   with pair precision, dup_group precision and recall per edit (bench_local.scores) of
   both. Nothing is chosen here: the thresholds are the shipped ones.
2. **Scale** (``--part scale``; both parts by default). The views of both sides written to
   a view store on disk under random ids (as a collection's are: the pairs sorted by first
   id do not follow families) by the store, then in a fresh process the indexer's
   ``localpairs.PairLocal`` over the pairs asked above (the first ``--scale-pairs`` of them
   in the indexer's order), reading views from disk: a first
   build (every pair compared), then a rebuild reusing the first's ``local.npz`` (nothing
   changed: no pair compared again); ms per pair, views read, peak memory (VmHWM, and
   the process's after its imports). ``--replicate N`` copies the views and pairs N times
   under new ids.

Writes bench/results/views.json (``--out``) with the date, commit and load average.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish, run_label

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Encoding:
    name: str
    lossless: bool
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes], np.ndarray]


def _cv2_encode(ext: str, params: list[int], colour: bool = False) -> Callable[[np.ndarray], bytes]:
    def encode(grey: np.ndarray) -> bytes:
        import cv2

        picture = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR) if colour else grey
        ok, data = cv2.imencode(ext, picture, params)
        assert ok, ext
        return bytes(data.tobytes())

    return encode


def _cv2_decode(data: bytes) -> np.ndarray:
    import cv2

    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert out is not None
    return np.asarray(out)


def encodings() -> dict[str, Encoding]:
    import cv2

    png, jpg, webp = cv2.IMWRITE_PNG_COMPRESSION, cv2.IMWRITE_JPEG_QUALITY, cv2.IMWRITE_WEBP_QUALITY
    out = [
        Encoding(f"png{k}", True, _cv2_encode(".png", [png, k]), _cv2_decode) for k in (1, 3, 6, 9)
    ]
    # OpenCV writes WebP lossless above quality 100; WebP has no grey mode (three equal
    # channels, read back as grey).
    out.append(
        Encoding("webp-lossless", True, _cv2_encode(".webp", [webp, 101], True), _cv2_decode)
    )
    for q in (90, 95):
        out.append(Encoding(f"jpeg{q}", False, _cv2_encode(".jpg", [jpg, q]), _cv2_decode))
    for q in (90, 95):
        out.append(Encoding(f"webp{q}", False, _cv2_encode(".webp", [webp, q], True), _cv2_decode))
    return {e.name: e for e in out}


BASELINE = "png3"  # what the view store wrote before this bench


def measure_encoding(
    enc: Encoding, views: list[np.ndarray]
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Bytes, encode and decode ms per view, the pixel error; the decoded views."""
    sizes, decoded = [], []
    t_enc = t_dec = 0.0
    err_max, err_sum, pixels = 0, 0.0, 0
    for v in views:
        t = time.perf_counter()
        data = enc.encode(v)
        t_enc += time.perf_counter() - t
        t = time.perf_counter()
        back = enc.decode(data)
        t_dec += time.perf_counter() - t
        sizes.append(len(data))
        diff = np.abs(back.astype(np.int16) - v.astype(np.int16))
        err_max = max(err_max, int(diff.max()))
        err_sum += float(diff.sum())
        pixels += diff.size
        decoded.append(back)
    n = max(1, len(views))
    s = np.array(sizes)
    return {
        "views": len(views),
        "bytes_mean": float(s.mean()),
        "bytes_p50": float(np.percentile(s, 50)),
        "bytes_p95": float(np.percentile(s, 95)),
        "raw_bytes_mean": float(np.mean([v.size for v in views])),
        "encode_ms": 1000 * t_enc / n,
        "decode_ms": 1000 * t_dec / n,
        "max_abs_error": err_max,
        "mean_abs_error": err_sum / max(1, pixels),
    }, decoded


def side_pairs(items: list[Any], seen: Any) -> dict[str, Any]:
    """bench_local's pairs with the indexer's candidate pool, and which of them the indexer
    asks local evidence for (those ``decide`` claims with perfect local evidence)."""
    from bench_local import informative
    from bench_quality import all_pairs

    from services.indexer.verify import Local, VerifyConfig, decide

    config = VerifyConfig()
    p = all_pairs(items, seen)
    assert config.min_cosine is not None
    pool = p["candidate"] | (p["knn"] & (p["cos"] >= config.min_cosine))
    without, weighted = decide(p["d"], p["info"], p["color"], p["cos"], config)
    perfect, _ = decide(p["d"], p["info"], p["color"], p["cos"], config, Local.perfect(len(p["a"])))
    asked = np.flatnonzero(pool & perfect)
    p["informative"] = informative(items, seen, config.min_information)[p["a"]]
    return {"p": p, "pool": pool, "without": without & pool, "weighted": weighted, "asked": asked}


def evidence(
    views: list[np.ndarray], pairs: dict[str, Any], label: str
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Inliers and cell score of every asked pair from these views; seconds per picture
    (features) and per pair (comparison)."""
    from tqdm import tqdm

    from lookalike import localmatch as lm

    t = time.perf_counter()
    found = [lm.features(v) for v in views]
    per_picture = (time.perf_counter() - t) / max(1, len(views))
    matcher = lm.make_matcher(lm.Config())
    p, asked = pairs["p"], pairs["asked"]
    inliers = np.full(len(asked), np.nan)
    score = np.full(len(asked), np.nan)
    t = time.perf_counter()
    for n, k in enumerate(tqdm(asked.tolist(), desc=label, unit="pair", file=sys.stderr)):
        a, b = int(p["a"][k]), int(p["b"][k])
        ev = lm.compare_features(views[a], found[a], views[b], found[b], matcher=matcher)
        inliers[n], score[n] = ev.inliers, ev.score
    per_pair = (time.perf_counter() - t) / max(1, len(asked))
    return inliers, score, per_picture, per_pair


def verdicts(pairs: dict[str, Any], inliers: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The indexer's claim over all pairs with this local evidence for the asked ones."""
    from services.indexer.verify import Local, VerifyConfig, decide

    p, n = pairs["p"], len(pairs["p"]["a"])
    local = Local.unknown(n)
    local.inliers[pairs["asked"]] = inliers
    local.score[pairs["asked"]] = score
    claim, _ = decide(p["d"], p["info"], p["color"], p["cos"], VerifyConfig(), local)
    return claim & pairs["pool"]


def compare_side(
    items: list[Any],
    pairs: dict[str, Any],
    base: tuple[np.ndarray, np.ndarray],
    other: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """How an encoding's local evidence differs from the lossless views' over the asked
    pairs, and both claims' scores."""
    from bench_local import scores

    from services.indexer.verify import LOCAL_CLAIM_INLIERS, LOCAL_MIN_SCORE

    (bi, bs), (oi, os_) = base, other
    j = {"p": pairs["p"], "weighted": pairs["weighted"]}
    claim_b, claim_o = verdicts(pairs, bi, bs), verdicts(pairs, oi, os_)
    veto_b, veto_o = bs < LOCAL_MIN_SCORE, os_ < LOCAL_MIN_SCORE
    geo_b, geo_o = bi >= LOCAL_CLAIM_INLIERS, oi >= LOCAL_CLAIM_INLIERS
    both = np.isfinite(bs) & np.isfinite(os_)
    ds = np.abs(os_ - bs)[both]
    di = (oi - bi)[np.isfinite(bi) & np.isfinite(oi)]
    same = pairs["p"]["same"]
    flipped = np.flatnonzero(claim_b != claim_o)
    return {
        "asked": len(pairs["asked"]),
        "veto_flips": int((veto_b != veto_o).sum()),
        "geometry_flips": int((geo_b != geo_o).sum()),
        "compared_flips": int((np.isfinite(bs) != np.isfinite(os_)).sum()),
        "claim_flips": len(flipped),
        "claim_flips_same_family": int(same[flipped].sum()),
        "claim_flips_gained": int((claim_o & ~claim_b).sum()),
        "claim_flips_lost": int((claim_b & ~claim_o).sum()),
        "score_abs_diff_p50_p99_max": [float(x) for x in np.percentile(ds, [50, 99, 100])]
        if len(ds)
        else [],
        "inliers_diff_p1_p50_p99": [float(x) for x in np.percentile(di, [1, 50, 99])]
        if len(di)
        else [],
        "lossless": scores(items, j, claim_b),
        "encoded": scores(items, j, claim_o),
    }


def _ids(items: list[Any]) -> list[str]:
    """Random-looking image ids (as a collection's): sorting pairs by them does not follow
    families."""
    return [hashlib.sha1(i.id.encode()).hexdigest()[:20] for i in items]


def write_store(
    folder: Path,
    sides: dict[str, tuple[list[Any], dict[str, Any], list[np.ndarray]]],
    replicate: int,
    earlier: bool,
    most: int,
) -> int:
    """The views of both sides in a view store (``earlier``: as PNG files written directly,
    not by the store) and the asked pairs as the
    indexer orders them (sorted by first id, the first ``most``, in ``pairs.json``); returns
    the views' count."""
    from lookalike.localmatch import LOCAL_RECIPE
    from lookalike.viewstore import ViewStore

    shutil.rmtree(folder, ignore_errors=True)
    store = ViewStore(folder / "views", max_bytes=1 << 62)
    png = encodings()["png3"]
    keys: set[tuple[str, str]] = set()
    count = 0
    for copy in range(replicate):
        for items, pairs, views in sides.values():
            ids = [f"{copy:02d}{x}"[:20] if copy else x for x in _ids(items)]
            for image_id, v in zip(ids, views, strict=True):
                if earlier:
                    f = folder / "views" / image_id[:2] / f"{image_id}.{LOCAL_RECIPE}.png"
                    f.parent.mkdir(parents=True, exist_ok=True)
                    f.write_bytes(png.encode(v))
                else:
                    store.files.put(image_id, png.encode(v))  # the grey plane alone
                count += 1
            p = pairs["p"]
            for k in pairs["asked"].tolist():
                x, y = ids[int(p["a"][k])], ids[int(p["b"][k])]
                keys.add((min(x, y), max(x, y)))
    (folder / "pairs.json").write_text(json.dumps(sorted(keys)[:most]))
    return count


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: ru_maxrss would carry the parent's over
    the fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def scale(folder: Path) -> dict[str, Any]:
    """(In a fresh process.) The indexer's local evidence over the pairs of ``folder``:
    first build, then a rebuild reusing its memo."""
    from lookalike import localmatch
    from lookalike.viewstore import ViewStore
    from services.indexer.localpairs import PairLocal, load_memo, save_memo

    localmatch.features(np.zeros((8, 8), np.uint8))  # OpenCV imported before the baseline
    rss0 = _peak_mb()
    keys = [tuple(k) for k in json.loads((folder / "pairs.json").read_text())]
    a, b = [k[0] for k in keys], [k[1] for k in keys]
    store = ViewStore(folder / "views", max_bytes=0)
    reads = 0

    def counted(image_id: str) -> np.ndarray | None:
        nonlocal reads
        reads += 1
        return store.get(image_id)

    first = PairLocal(counted, versions=store.version)
    t = time.perf_counter()
    cpu = time.process_time()
    out = first(a, b)
    first_s, first_cpu = time.perf_counter() - t, time.process_time() - cpu
    rss_first = _peak_mb()
    gen = folder / "gen-1"
    gen.mkdir(exist_ok=True)
    t = time.perf_counter()
    save_memo(gen, first.found)
    save_s = time.perf_counter() - t
    first_reads, reads = reads, 0
    t = time.perf_counter()
    memo = load_memo(gen)
    again = PairLocal(counted, versions=store.version, memo=memo)
    out2 = again(a, b)
    rebuild_s = time.perf_counter() - t
    assert np.array_equal(out.score, out2.score, equal_nan=True)
    n = max(1, len(keys))
    return {
        "pairs": len(keys),
        "images": len({*a, *b}),
        "compared": first.compared,
        "first_build_s": first_s,
        "first_ms_per_pair": 1000 * first_s / n,
        "first_cpu_ms_per_pair": 1000 * first_cpu / n,
        "views_read_first": first_reads,
        "memo_bytes": (gen / "local.npz").stat().st_size,
        "memo_save_s": save_s,
        "rebuild_s": rebuild_s,
        "rebuild_ms_per_pair": 1000 * rebuild_s / n,
        "reused": again.reused,
        "views_read_rebuild": reads,
        "peak_rss_mb": rss_first,
        "rss_after_imports_mb": rss0,
        "peak_rss_after_rebuild_mb": _peak_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", default="met,blank")
    parser.add_argument("--test", default="portraits,wallpapers,skimage")
    parser.add_argument("--cache", type=Path, default=None, help="pictures cache folder")
    parser.add_argument(
        "--lossy", default="jpeg95", help="lossy encodings judged (jpeg90,jpeg95,webp90,webp95)"
    )
    parser.add_argument(
        "--part",
        choices=("all", "encodings", "scale"),
        default="all",
        help="encodings: sizes, cost and verdicts; scale: the indexer reading views from disk",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=4,
        help="bytes and ms of the encodings not judged over every n-th view",
    )
    parser.add_argument(
        "--scale-pairs",
        type=int,
        default=8000,
        help="the indexer judges the first this many asked pairs (sorted by first id)",
    )
    parser.add_argument("--replicate", type=int, default=1, help="copies of the views for --scale")
    parser.add_argument("--store", type=Path, default=Path("/tmp/lk/views-scale"))
    parser.add_argument("--scale-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "views.json")
    args = parser.parse_args()
    if args.scale_only:
        print(json.dumps(scale(args.scale_only)))
        return
    from bench_quality import examined, labelled, without_identical
    from pictures import CACHE

    from lookalike import localmatch as lm
    from lookalike.embedding.embedder import shared_embedder
    from lookalike.settings import load_settings
    from services.indexer.evaluation import thumbnail
    from services.replica.variants import EDITS

    load_before = os.getloadavg()[0]
    label = run_label()
    cache = args.cache or CACHE
    known = encodings()
    lossy = [s for s in args.lossy.split(",") if s]
    for name in lossy:
        if name not in known or known[name].lossless:
            parser.error(
                f"--lossy {name}: one of {[k for k, e in known.items() if not e.lossless]}"
            )
    embedder = shared_embedder(load_settings())
    results: dict[str, Any] = {**label, "args": {k: str(v) for k, v in vars(args).items()}}
    lines: list[str] = []
    sides: dict[str, tuple[list[Any], dict[str, Any], list[np.ndarray]]] = {}
    for side, sets in (("tuning", args.tune), ("test", args.test)):
        if not sets:  # --tune "": the held-out side only
            continue
        items = labelled([s for s in sets.split(",") if s], cache)
        items, seen, _ = without_identical(
            items, examined(items, side if side == "test" else "tune", embedder)
        )
        from tqdm import tqdm

        views = [  # the grey planes (their colours, ~11 KB, are stored apart and not measured)
            lm.grey(lm.view(thumbnail(i.load())))
            for i in tqdm(items, desc=f"{side} views", unit="img", file=sys.stderr)
        ]
        sides[side] = (items, side_pairs(items, seen), views)

    if args.part in ("all", "encodings"):
        all_views = [v for _, _, views in sides.values() for v in views]
        lines.append(
            f"{len(all_views)} views "
            f"({', '.join(f'{s}: {len(v)}' for s, (_, _, v) in sides.items())})"
        )
        lines.append(
            f"  {'encoding':<14} {'KB/view':>8} {'p95 KB':>7} {'x raw':>6} {'x png3':>7} "
            f"{'enc ms':>7} {'dec ms':>7} {'max err':>7} {'mean err':>8}"
        )
        sized: dict[str, dict[str, Any]] = {}
        decoded_by: dict[str, list[np.ndarray]] = {}
        for name, enc in known.items():
            judged = name in lossy or name == BASELINE
            figures, decoded = measure_encoding(
                enc, all_views if judged else all_views[:: max(1, args.sample)]
            )
            if enc.lossless:
                assert figures["max_abs_error"] == 0, f"{name} is not lossless"
            elif name in lossy:
                decoded_by[name] = decoded
            sized[name] = figures
        # the baseline over the same views as the encodings measured on a sample
        step = max(1, args.sample)
        sample_base = measure_encoding(known[BASELINE], all_views[::step])[0]["bytes_mean"]
        for name, f in sized.items():
            base = sized[BASELINE] if f["views"] == len(all_views) else {"bytes_mean": sample_base}
            f["of_baseline"] = f["bytes_mean"] / base["bytes_mean"]
            lines.append(
                f"  {name:<14} {f['bytes_mean'] / 1000:>8.1f} {f['bytes_p95'] / 1000:>7.1f} "
                f"{f['bytes_mean'] / f['raw_bytes_mean']:>6.3f} "
                f"{f['of_baseline']:>7.3f} {f['encode_ms']:>7.2f} "
                f"{f['decode_ms']:>7.2f} {f['max_abs_error']:>7} {f['mean_abs_error']:>8.3f}"
            )
        results["encodings"] = sized

        results["verdicts"] = {}
        offset = 0
        base_ev: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for side, (items, pairs, views) in sides.items():
            inl, sc, per_picture, per_pair = evidence(views, pairs, f"{side} lossless")
            base_ev[side] = (inl, sc)
            results["verdicts"][side] = {
                "pictures": len(items),
                "pairs": len(pairs["p"]["a"]),
                "asked": len(pairs["asked"]),
                "asked_per_picture": len(pairs["asked"]) / len(items),
                "features_ms_per_picture": 1000 * per_picture,
                "compare_ms_per_pair": 1000 * per_pair,
            }
        for name in lossy:
            offset = 0
            for side, (items, pairs, views) in sides.items():
                mine = decoded_by[name][offset : offset + len(views)]
                offset += len(views)
                inl, sc, _, _ = evidence(mine, pairs, f"{side} {name}")
                results["verdicts"][side][name] = compare_side(
                    items, pairs, base_ev[side], (inl, sc)
                )
        for side in sides:
            r = results["verdicts"][side]
            lines.append(
                f"\n== {side}: {r['pictures']} pictures, {r['asked']} pairs asked for local "
                f"evidence "
                f"({r['asked_per_picture']:.2f} per picture); features "
                f"{r['features_ms_per_picture']:.1f} ms per picture, comparison "
                f"{r['compare_ms_per_pair']:.2f} ms per pair"
            )
            lines.append(
                f"  {'views':<14} {'veto':>5} {'geom':>5} {'cmp':>5} {'claims':>6} {'+/-':>7} "
                f"{'|dscore| p50/p99/max':>22} {'dinl p1/p50/p99':>16} {'precision':>9} "
                f"{'dup_group':>9}  " + " ".join(f"{e[:8]:>8}" for e in EDITS)
            )
            if lossy:
                base = r[lossy[0]]["lossless"]
                lines.append(
                    f"  {'lossless':<14} {'':>5} {'':>5} {'':>5} {'':>6} {'':>7} {'':>22} {'':>16} "
                    f"{base['precision']:>9.4f} {base['group_precision']:>9.4f}  "
                    + " ".join(
                        f"{base['recall_by_edit'].get(e, float('nan')):>8.3f}" for e in EDITS
                    )
                )
            for name in lossy:
                c = r[name]
                sc = c["encoded"]
                lines.append(
                    f"  {name:<14} {c['veto_flips']:>5} {c['geometry_flips']:>5} "
                    f"{c['compared_flips']:>5} {c['claim_flips']:>6} "
                    f"{'+' + str(c['claim_flips_gained']) + '/-' + str(c['claim_flips_lost']):>7} "
                    f"{'/'.join(f'{x:.3f}' for x in c['score_abs_diff_p50_p99_max']):>22} "
                    f"{'/'.join(f'{x:.0f}' for x in c['inliers_diff_p1_p50_p99']):>16} "
                    f"{sc['precision']:>9.4f} {sc['group_precision']:>9.4f}  "
                    + " ".join(f"{sc['recall_by_edit'].get(e, float('nan')):>8.3f}" for e in EDITS)
                )

    if args.part in ("all", "scale"):
        results["scale"] = {}
        for name, earlier in [("as the store writes them", False)]:
            folder = args.store / ("png" if earlier else "store")
            count = write_store(folder, sides, max(1, args.replicate), earlier, args.scale_pairs)
            stored = sum(f.stat().st_size for f in (folder / "views").glob("*/*"))
            done = subprocess.run(
                [sys.executable, __file__, "--scale-only", str(folder)],
                capture_output=True,
                text=True,
                check=True,
            )
            s = json.loads(done.stdout.strip().splitlines()[-1])
            s["views"] = count
            s["store_bytes"] = stored
            results["scale"][name] = s
            lines.append(
                f"\n== scale, views {name}: {count} on disk ({stored / count / 1000:.1f} KB "
                f"each), {s['pairs']} pairs asked ({s['pairs'] / count:.2f} per view; "
                f"{s['images']} views in a pair)"
            )
            lines.append(
                f"  first build: {s['first_build_s']:.1f} s, {s['first_ms_per_pair']:.2f} ms per "
                f"pair ({s['first_cpu_ms_per_pair']:.2f} CPU), {s['views_read_first']} views "
                f"read ({s['views_read_first'] / max(1, s['images']):.2f} per view in a pair)"
            )
            lines.append(
                f"  rebuild reusing local.npz ({s['memo_bytes'] / 1e6:.1f} MB, saved in "
                f"{s['memo_save_s']:.2f} s): {s['rebuild_s']:.2f} s, "
                f"{s['rebuild_ms_per_pair']:.3f} ms per pair, {s['reused']} reused, "
                f"{s['views_read_rebuild']} views read"
            )
            lines.append(
                f"  peak RSS {s['peak_rss_mb']:.0f} MB ({s['rss_after_imports_mb']:.0f} MB "
                f"after imports; {s['peak_rss_after_rebuild_mb']:.0f} MB after the rebuild)"
            )
    results["loadavg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    lines.append(
        f"\n{label['date']}, commit {label['commit']}; load average "
        f"{results['loadavg_1min'][0]} -> {results['loadavg_1min'][1]}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    publish(results, "\n".join(lines), args.out)


if __name__ == "__main__":
    main()
