"""Local features with geometric verification as near-duplicate evidence, measured offline.

    python bench/bench_local.py                        # ORB, tune on met+blank, test on the rest
    python bench/bench_local.py --features sift --side 320 --out FILE
    python bench/bench_local.py --methods linear,ncc,toned,rank   # cell comparisons side by side

The standard second stage of copy detection: keypoints of both thumbnails matched, then one
similarity transform (rotation, uniform scale, shift) fitted by RANSAC; a copy keeps many of
its keypoints under one transform, a different picture does not, but a picture painted over
another keeps its line art and as many keypoints as a copy: hence the comparison through
the transform below. Mirrored copies: the first picture's keypoints are also taken from its
mirror image and the better orientation kept.

Pictures, families, planted edits, hashes and embeddings are bench_quality.py's (its caches);
the pairs judged are the ones the indexer would judge (hash candidates, and each picture's
``EMBEDDING_CANDIDATES`` nearest by embedding, here from cosine ``--min-knn-cosine``), those
it could ever claim (both pictures informative, colours agreeing). Per pair: the inliers of
the best transform and, through that transform, a comparison cell by cell (``aligned``: the
normalised cross-correlation of the grey levels in 16 px cells, blind to brightness,
contrast and colour, and a tone residual), once per cell comparison of ``--methods``
(lookalike.localmatch.CELL_METHODS: the product's first). Thresholds are chosen on the
tuning sets (met + blank; ``choose``, per comparison) and reported on each held-out set on
its own, against the shipped rule (services/indexer/verify.py) in the same run:

- **inliers alone**: a pair is claimed from the inlier count ``choose`` picks (the inlier
  counts of copies and of repaints overlap: printed to show it);
- **veto cells**: a pair the shipped rule claims is refused when the 25th percentile of its
  cells' correlation is below what 99.5% of the tuning copies it claims reach;
- **veto cells+tone**: ... or its tone residual above what 99.5% of them stay within;
- **shipped|geometry, veto** (per comparison): also claimed from enough inliers when the
  embeddings agree as much as the shipped rule's embedding claim asks (``NEARDUP_MIN_COSINE``),
  without its limit on the hash distance (rotations and crops beyond it), the cells' veto on
  both;
- **... and p10**, **... and below 0.5**: the worst cells too: also refused when the 10th
  percentile of the cells' correlation is below, or the share of cells below 0.5 above, what
  99.5% of the tuning copies reach (a repaint of less than a quarter of the cells).

A pair with fewer than ``MIN_ALIGNED`` inliers or no cell to compare is judged on the rest.
The view, the keypoints and the comparison are lookalike/localmatch.py's, the code the
product verifies with.
Cost: features per picture (both orientations) and matching per pair are timed.

Writes bench/results/local.json (``--out``) with the date, commit and load average, and
each judged pair's figures beside it (``local.npz``: the pairs' rows, their evidence, labels
and the shipped verdict, per side, to weigh other rules offline).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish, run_label
from bench_quality import RESULTS, all_pairs, examined, labelled, without_identical
from pictures import CACHE

from lookalike import localmatch as lm
from services.indexer.duplicates import Duplicate, group_duplicates
from services.indexer.evaluation import ORIGINAL, Labelled, grouped_pairs, thumbnail
from services.indexer.verify import VerifyConfig, decide
from services.replica.variants import EDITS


def describe(
    items: list[Labelled], config: lm.Config, side: int
) -> tuple[list[lm.Features], list[np.ndarray], float]:
    """Every picture's view (grey, longer side ``side``), the keypoints and descriptors of
    it and of its mirror image, and seconds per picture of making both."""
    from tqdm import tqdm

    found: list[lm.Features] = []
    views: list[np.ndarray] = []
    spent = 0.0
    for item in tqdm(items, desc=f"{config.detector} features", unit="img", file=sys.stderr):
        small = thumbnail(item.load())
        t = time.perf_counter()
        v = lm.view(small, side)
        found.append(lm.features(v, config))
        spent += time.perf_counter() - t
        views.append(v)
    return found, views, spent / max(1, len(items))


def informative(items: list[Labelled], seen: Any, min_information: float) -> np.ndarray:
    """Per picture: whether its family's original has detail enough for hashes (as
    bench_quality's "informative only": the families too plain for them are left out)."""
    assert seen.table.info is not None
    info = {
        i.family: float(x)
        for i, x in zip(items, seen.table.info, strict=True)
        if i.edit == ORIGINAL
    }
    return np.array([info.get(i.family, np.inf) >= min_information for i in items])


def judge(items: list[Labelled], seen: Any, args: argparse.Namespace, label: str) -> dict[str, Any]:
    """Every pair the indexer could claim, with the shipped rule's verdict and the
    geometry of its keypoints."""
    config = VerifyConfig()
    p = all_pairs(items, seen)
    assert config.min_cosine is not None
    pool = p["candidate"] | (p["knn"] & (p["cos"] >= args.min_knn_cosine))
    usable = ~(p["info"] < config.min_information) & (
        (p["color"] < 0) | (p["color"] <= (config.max_color or 255))
    )
    shipped_pool = p["candidate"] | (p["knn"] & (p["cos"] >= config.min_cosine))
    shipped, weighted = decide(p["d"], p["info"], p["color"], p["cos"], config)
    shipped &= shipped_pool
    keep = np.flatnonzero(pool & usable)
    p["informative"] = informative(items, seen, config.min_information)[p["a"]]
    local = lm.Config(args.features, args.keypoints, args.ratio, args.reproj)
    found, views, per_image = describe(items, local, args.side)
    matcher = lm.make_matcher(local)
    methods = args.methods.split(",")
    # inliers, matches, mirrored, then per cell comparison (``methods``) the cells: p10,
    # share < 0.5, p25, p50, tone, count
    out = np.full((len(keep), 3 + CELL_COLUMNS * len(methods)), np.nan)
    t = time.perf_counter()
    from tqdm import tqdm

    for n, k in enumerate(tqdm(keep.tolist(), desc=f"{label} pairs", unit="pair", file=sys.stderr)):
        a, b = int(p["a"][k]), int(p["b"][k])
        out[n] = evidence(views[a], found[a], views[b], found[b], local, matcher, methods)
    per_pair = (time.perf_counter() - t) / max(1, len(keep))
    kp = np.array(
        [
            min(len(found[int(p["a"][k])].direct.xy), len(found[int(p["b"][k])].direct.xy))
            for k in keep
        ]
    )
    return {
        "p": p,
        "keep": keep,
        "geo": out,
        "kp": kp,
        "shipped": shipped,
        "weighted": weighted,
        "methods": methods,
        "per_image_s": per_image,
        "per_pair_s": per_pair,
    }


CELL_COLUMNS = 6  # p10, share below 0.5, p25, p50, tone, count


def evidence(
    a: np.ndarray,
    fa: lm.Features,
    b: np.ndarray,
    fb: lm.Features,
    config: lm.Config,
    matcher: Any,
    methods: list[str],
) -> list[float]:
    """One pair's row of ``geo``: the geometry found once, the cells compared each way."""
    direct = lm.geometry(fa.direct, fb.direct, config, matcher)
    flipped = lm.geometry(fa.mirror, fb.direct, config, matcher)
    mirrored = flipped.inliers > direct.inliers
    best = flipped if mirrored else direct
    row = [float(best.inliers), float(best.matches), float(mirrored)]
    first = np.ascontiguousarray(a[:, ::-1]) if mirrored else a
    for method in methods:
        c = lm.NOT_COMPARED
        if best.model is not None and best.inliers >= lm.MIN_ALIGNED:
            c = lm.best_aligned(first, b, best.model, method)[0]
        row += [c.p10, c.below_half, c.p25, c.p50, c.tone, float(c.count)]
    return row


def column(j: dict[str, Any], method: str, what: str) -> np.ndarray:
    """One cell statistic (``p10``, ``below_half``, ``p25``, ``p50``, ``tone``, ``count``)
    of one cell comparison, per judged pair."""
    stats = ("p10", "below_half", "p25", "p50", "tone", "count")
    col = 3 + CELL_COLUMNS * j["methods"].index(method) + stats.index(what)
    return np.asarray(j["geo"][:, col])


def scores(items: list[Labelled], j: dict[str, Any], claim: np.ndarray) -> dict[str, Any]:
    """Pair precision, recall per edit (of every original-edit pair), dup_group precision
    (complete linkage, as the indexer groups) of a claim over all pairs."""
    p = j["p"]
    same, oe, edit = p["same"], p["orig_edit"], p["edit"]
    claimed = np.flatnonzero(claim)
    tp = int(same[claimed].sum())
    ids = [i.id for i in items]
    family = {i.id: i.family for i in items}
    dups = []
    for k in claimed.tolist():
        a, b = sorted((ids[p["a"][k]], ids[p["b"][k]]))
        dups.append(Duplicate(a, b, float(j["weighted"][k]), False, (), 0.0, -1))
    gp, gf = grouped_pairs(group_duplicates(dups), family)
    return {
        "claimed": len(claimed),
        "false_pairs": len(claimed) - tp,
        "precision": tp / len(claimed) if len(claimed) else 1.0,
        "recall_by_edit": {
            e: float(claim[oe & (edit == e)].mean()) for e in EDITS if (oe & (edit == e)).any()
        },
        "informative_recall_by_edit": {
            e: float(claim[oe & (edit == e) & p["informative"]].mean())
            for e in EDITS
            if (oe & (edit == e) & p["informative"]).any()
        },
        "group_precision": (gp - gf) / gp if gp else 1.0,
        "group_false": gf,
    }


KEEP = 0.995  # share of the tuning copies a veto must keep
CLAIM_PRECISION = 0.999  # tuning precision the claim on geometry must keep


@dataclass(frozen=True)
class Thresholds:
    """Chosen on the tuning pairs (never on the pictures reported on)."""

    method: str  # how cells are compared (lookalike.localmatch.CELL_METHODS)
    min_correlation: float  # 25th-percentile cell correlation that KEEP of the copies reach
    max_tone: float  # tone residual that KEEP of the copies stay within
    claim_inliers: float  # fewest inliers at which geometry (with the veto) claims a pair
    min_worst: float  # 10th-percentile cell correlation that KEEP of the copies reach
    max_below_half: float  # share of cells below 0.5 that KEEP of the copies stay within


def choose(j: dict[str, Any], method: str) -> Thresholds:
    """The vetoes keep ``KEEP`` of the original-edit pairs the shipped rule claims on the
    tuning set (as the colour limit and the embedding veto were chosen); the claim on
    geometry is the lowest inlier count (from ``MIN_ALIGNED``) at which inliers and the
    veto together keep the tuning precision >= ``CLAIM_PRECISION``."""
    p, keep, geo = j["p"], j["keep"], j["geo"]
    copies = (p["orig_edit"] & j["shipped"])[keep]

    def kept(what: str, low: bool) -> float:
        x = column(j, method, what)[copies]
        return float(np.percentile(x[np.isfinite(x)], 100 * (1 - KEEP if low else KEEP)))

    min_correlation = np.floor(kept("p25", True) * 1000) / 1000
    min_worst = np.floor(kept("p10", True) * 1000) / 1000
    max_below = np.ceil(kept("below_half", False) * 1000) / 1000
    same, inl = p["same"][keep], geo[:, 0]
    alike = ~(column(j, method, "p25") < min_correlation)
    claim = float("inf")
    for m in range(200, lm.MIN_ALIGNED - 1, -1):
        ok = (inl >= m) & alike
        tp, fp = int((ok & same).sum()), int((ok & ~same).sum())
        if tp + fp and tp / (tp + fp) < CLAIM_PRECISION:
            break
        claim = float(m)
    high = np.ceil(kept("tone", False) * 100) / 100
    return Thresholds(method, min_correlation, high, claim, min_worst, max_below)


def rules(j: dict[str, Any], chosen: list[Thresholds]) -> dict[str, np.ndarray]:
    """The claims over all pairs of each way of using the local evidence, the first cell
    comparison's with every rule, the others' with the last. A pair whose pictures could
    not be aligned, or have no cell to compare, is judged on the rest."""
    n = len(j["p"]["a"])
    geo = j["geo"]
    t = chosen[0]

    def over_all(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(n, bool)
        out[j["keep"]] = mask
        return out

    alike = over_all(~(column(j, t.method, "p25") < t.min_correlation))
    tone = over_all(~(column(j, t.method, "tone") > t.max_tone))
    # what the shipped rule's embedding claim asks of a pair's cosine, without its hash limit
    alike_embedding = j["p"]["cos"] >= VerifyConfig().min_cosine
    claim = over_all(geo[:, 0] >= t.claim_inliers) & alike_embedding
    shipped = j["shipped"]
    out = {
        "shipped": shipped,
        "inliers alone": over_all(geo[:, 0] >= t.claim_inliers),
        "veto cells": shipped & alike,
        "veto cells+tone": shipped & alike & tone,
    }
    for c in chosen:
        p25, p10 = column(j, c.method, "p25"), column(j, c.method, "p10")
        below = column(j, c.method, "below_half")
        alike = over_all(~(p25 < c.min_correlation))
        claim = over_all(geo[:, 0] >= c.claim_inliers) & alike_embedding
        out[f"{c.method}: shipped|geometry, veto"] = (shipped | claim) & alike
        worst = over_all(~(p10 < c.min_worst))
        out[f"{c.method}: ... and p10"] = (shipped | claim) & alike & worst
        few = over_all(~(below > c.max_below_half))
        out[f"{c.method}: ... and below 0.5"] = (shipped | claim) & alike & few
    return out


def distribution(j: dict[str, Any], method: str) -> dict[str, Any]:
    """Percentiles (1, 5, 50) of inliers and of the cells' correlation, of the original-edit
    pairs per edit and of the different-family pairs the shipped rule claims."""
    p, keep, geo = j["p"], j["keep"], j["geo"]
    score = column(j, method, "p25")
    out: dict[str, Any] = {}
    groups = {e: (p["orig_edit"] & (p["edit"] == e))[keep] for e in EDITS}
    groups["different, claimed"] = (~p["same"] & j["shipped"])[keep]
    groups["different, judged"] = ~p["same"][keep]
    for name, m in groups.items():
        if m.any():
            ncc = score[m][np.isfinite(score[m])]
            out[name] = {
                "pairs": int(m.sum()),
                "inliers": [float(x) for x in np.percentile(geo[m, 0], [1, 5, 50, 95, 99])],
                "correlation_p25": [float(x) for x in np.percentile(ncc, [1, 5, 50, 95, 99])]
                if len(ncc)
                else [],
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", default="met,blank")
    parser.add_argument(
        "--test",
        default="portraits,wallpapers,skimage,clipart",
        help="held-out sets, each reported on its own",
    )
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--features", default="orb", help="orb or sift")
    parser.add_argument("--side", type=int, default=320, help="longer side features are found at")
    parser.add_argument("--keypoints", type=int, default=500, help="at most this many per picture")
    parser.add_argument("--ratio", type=float, default=0.8, help="Lowe's ratio test")
    parser.add_argument("--reproj", type=float, default=4.0, help="RANSAC inlier radius, pixels")
    parser.add_argument(
        "--min-knn-cosine",
        type=float,
        default=0.5,
        help="embedding kNN candidates judged from this cosine",
    )
    parser.add_argument(
        "--methods",
        default=",".join(dict.fromkeys([lm.CELLS, *lm.CELL_METHODS])),
        help="cell comparisons measured (lookalike.localmatch.CELL_METHODS), the product's first",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "local.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    label = run_label()
    from lookalike.embedding.embedder import shared_embedder
    from lookalike.settings import load_settings

    embedder = shared_embedder(load_settings())
    sides: dict[str, Any] = {}
    runs = [("tuning", "tune", args.tune)] + [(s, s, s) for s in args.test.split(",") if s]
    for side, cache_label, sets in runs:
        items = labelled([s for s in sets.split(",") if s], args.cache)
        items, seen, _ = without_identical(items, examined(items, cache_label, embedder))
        sides[side] = (items, judge(items, seen, args, side))
    chosen = [choose(sides["tuning"][1], m) for m in args.methods.split(",")]
    results: dict[str, Any] = {
        **label,
        "args": {k: str(v) for k, v in vars(args).items()},
        "chosen": [asdict(c) for c in chosen],
    }
    lines = [f"chosen on {args.tune}:"] + [f"  {c}" for c in chosen]
    for side, (items, j) in sides.items():
        results[side] = {
            "pairs_judged": len(j["keep"]),
            "ms_per_image": round(1000 * j["per_image_s"], 2),
            "ms_per_pair": round(1000 * j["per_pair_s"], 3),
            "percentiles": {c.method: distribution(j, c.method) for c in chosen},
        }
        lines.append(
            f"\n== {side}: {len(items)} pictures, {len(j['keep'])} pairs judged; features "
            f"{1000 * j['per_image_s']:.1f} ms per picture (both orientations), matching "
            f"and comparing every way {1000 * j['per_pair_s']:.2f} ms per pair"
        )
        for method, percentiles in results[side]["percentiles"].items():
            lines.append(
                f"  {method}: percentiles 1/5/50/95/99 of inliers | of the cells' correlation "
                "(25th percentile)"
            )
            for what, d in percentiles.items():
                lines.append(
                    f"  {what:<20} {d['pairs']:>6}  "
                    + " ".join(f"{x:>5.0f}" for x in d["inliers"])
                    + " | "
                    + " ".join(f"{x:>6.3f}" for x in d["correlation_p25"])
                )
        lines.append(
            f"  {'rule':<34} {'precision':>9} {'false':>6} {'dup_group':>9}  "
            + " ".join(f"{e[:11]:>11}" for e in EDITS)
        )
        results[side]["false_pairs"] = {}
        for name, claim in rules(j, chosen).items():
            sc = scores(items, j, claim)
            results[side][name] = sc
            lines.append(
                f"  {name:<34} {sc['precision']:>9.4f} {sc['false_pairs']:>6} "
                f"{sc['group_precision']:>9.4f}  "
                + " ".join(f"{sc['recall_by_edit'].get(e, float('nan')):>11.3f}" for e in EDITS)
            )
            lines.append(
                f"  {'  informative families':<34} {'':>9} {'':>6} {'':>9}  "
                + " ".join(
                    f"{sc['informative_recall_by_edit'].get(e, float('nan')):>11.3f}" for e in EDITS
                )
            )
            if ":" in name:
                results[side]["false_pairs"][name] = false_pairs(items, j, claim)
        for name, f in results[side]["false_pairs"].items():
            lines.append(
                f"  {name}: {f['false']} false pairs, {f['not_compared_locally']} of them not "
                "compared locally (too few inliers or no cell); they join: "
                + "; ".join(f"{a} ~ {b}: {n}" for a, b, n in f["families"][:6])
            )
    results["loadavg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    lines.append(
        f"\n{label['date']}, commit {label['commit']}; load average "
        f"{results['loadavg_1min'][0]} -> {results['loadavg_1min'][1]}"
    )
    arrays: dict[str, Any] = {
        f"{side}_{k}": v
        for side, (items, j) in sides.items()
        for k, v in (
            ("keep", j["keep"]),
            ("geo", j["geo"]),
            ("kp", j["kp"]),
            ("a", j["p"]["a"]),
            ("b", j["p"]["b"]),
            ("same", j["p"]["same"]),
            ("orig_edit", j["p"]["orig_edit"]),
            ("edit", j["p"]["edit"]),
            ("cos", j["p"]["cos"]),
            ("informative", j["p"]["informative"]),
            ("shipped", j["shipped"]),
            ("weighted", j["weighted"]),
            ("family", np.array([i.family for i in items])),
            ("id", np.array([i.id for i in items])),
        )
    }
    np.savez_compressed(
        args.out.with_suffix(".npz"), methods=np.array(args.methods.split(",")), **arrays
    )
    publish(results, "\n".join(lines), args.out)


def false_pairs(items: list[Labelled], j: dict[str, Any], claim: np.ndarray) -> dict[str, Any]:
    """The different-family pairs a rule claims: how many, how many of them were not
    compared locally, and the pairs of families they join (most first)."""
    last = claim & ~j["p"]["same"]
    compared = np.zeros(len(last), bool)
    compared[j["keep"]] = np.isfinite(column(j, j["methods"][0], "p25"))
    joined: dict[tuple[str, str], int] = {}
    for k in np.flatnonzero(last).tolist():
        fa, fb = items[j["p"]["a"][k]].family, items[j["p"]["b"][k]].family
        key = (min(fa, fb), max(fa, fb))
        joined[key] = joined.get(key, 0) + 1
    return {
        "false": int(last.sum()),
        "not_compared_locally": int((last & ~compared).sum()),
        "families": sorted(([a, b, n] for (a, b), n in joined.items()), key=lambda r: -r[2]),
    }


if __name__ == "__main__":
    main()
