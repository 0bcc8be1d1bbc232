"""Near-duplicate quality: settings chosen on one set of pictures, reported on another.

    python bench/bench_quality.py                       # tune on met+blank, test on the rest
    python bench/bench_quality.py --tune met,blank --test portraits,wallpapers,skimage
    python bench/bench_quality.py --out bench/results/quality.json --crop-resistant 40

Pictures come from bench/pictures.py (fetched once into its cache). Every picture of a set
is a family of its own, planted with every edit of services/replica/variants.py (resize,
jpeg, noise, brightness, grayscale, crop_center, crop_side, border, rotate, mirror, text);
``blank`` pictures are negatives only (not planted: a blank page's copy is undetectable by
design).

1. **Tune** on the tuning sets only: the verifier's weights (a logistic regression of "same
   family" on the four structural distances of candidate pairs), the information guard
   (between the blank pages' highest and the pictures' lowest information), the colour limit
   (what 99.5% of the colourful original-edit pairs stay within) and the weighted-distance
   threshold (the largest keeping the tuning precision at 0.999).
   Hard negatives are not planted on the tuning side on purpose: the held-out sets bring
   their own (light and dark variants of one wallpaper, portraits painted over one another,
   a stereo pair, one chessboard in colour and in gray), so they measure what the settings
   do on related pictures they never saw.
2. **Report** on the test sets, which chose nothing, through the indexer's own pipeline
   (services.indexer.evaluation.score: candidates, verification, complete-linkage groups):
   pair precision, recall per edit, dup_group precision; with the settings shipped in
   services/indexer/verify.py, with the ones just chosen, and with the baseline measured in
   the same run: the previous rule (any kind within phash 10 / dhash 8 / whash 2 / ahash 2,
   groups as connected components).
3. **Crop-resistant hash** (``--crop-resistant N``): imagehash's crop_resistant_hash as a
   verifier of the N test families' crop and border pairs that hashes miss, and its cost.

Writes bench/results/quality.json (``--out``), with the load average and the date and commit.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish, run_label
from pictures import CACHE, fetch, pictures

from lookalike.hashing import HASH_KINDS, algorithm_version
from services.indexer.bits import mirror_values
from services.indexer.duplicates import pair_evidence
from services.indexer.evaluation import (
    ORIGINAL,
    Labelled,
    Scores,
    format_scores,
    hash_pictures,
    labelled_pictures,
    score,
)
from services.indexer.table import HashTable
from services.indexer.verify import (
    CANDIDATE_RADII,
    STRUCTURAL,
    VerifyConfig,
    weighted_distance,
)
from services.replica.variants import EDITS

RESULTS = Path(__file__).resolve().parent / "results"
NEGATIVE_SETS = {"blank"}
OLD_THRESHOLDS = {"phash": 10, "dhash": 8, "whash": 2, "ahash": 2}
TUNING_PRECISION = 0.999


def labelled(names: list[str], cache: Path) -> list[Labelled]:
    items: list[Labelled] = []
    for name in names:
        folder = fetch(name, cache)
        families = {f"{name}/{p.stem}": [p] for p in pictures(folder)}
        items.extend(labelled_pictures(families, () if name in NEGATIVE_SETS else EDITS))
    return items


def hashed(items: list[Labelled], label: str) -> HashTable:
    """Hash (cached by the items' ids and the hash algorithm version)."""
    key = hashlib.sha256(("\n".join(i.id for i in items) + algorithm_version()).encode())
    cache = RESULTS / f"quality-hashes-{label}-{key.hexdigest()[:12]}.npz"
    if cache.exists():
        z = np.load(cache)
        return HashTable.from_arrays(z["ids"].tolist(), {k: z[k] for k in HASH_KINDS},
                                     info=z["info"], color=z["color"].tolist())
    from tqdm import tqdm

    t = time.perf_counter()
    with tqdm(total=len(items), unit="img", desc=f"hashing {label}", file=sys.stderr) as bar:
        table = hash_pictures(items, progress=bar.update)
    print(f"hashed {len(items)} {label} pictures in {time.perf_counter() - t:.0f}s",
          file=sys.stderr)
    RESULTS.mkdir(parents=True, exist_ok=True)
    assert table.color is not None
    colors = [row.astype(np.int8).tobytes().hex() for row in table.color]
    np.savez(cache, ids=table.ids, info=table.info, color=np.array(colors),
             **{k: table.values[:, j] for j, k in enumerate(table.kinds)})
    return table


def _logistic(x: np.ndarray, y: np.ndarray, steps: int = 50, ridge: float = 1e-3
              ) -> np.ndarray:
    """Weights (intercept last) of a logistic regression by Newton's method."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + ridge * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + ridge * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def all_pairs(items: list[Labelled], table: HashTable) -> dict[str, np.ndarray]:
    """Evidence for every pair of the table (fine for a few thousand pictures)."""
    n = len(table)
    a, b = np.triu_indices(n, 1)
    assert table.info is not None and table.color is not None
    ev = pair_evidence(table.values, table.kinds, table.info, table.color, a, b)
    family = np.array([i.family for i in items])
    edit = np.array([i.edit for i in items])
    same = family[a] == family[b]
    one_original = (edit[a] == ORIGINAL) ^ (edit[b] == ORIGINAL)
    return {"a": a, "b": b, "d": ev.structural(), "info": ev.information, "color": ev.color,
            "same": same, "orig_edit": same & one_original,
            "edit": np.where(edit[a] == ORIGINAL, edit[b], edit[a]),
            "candidate": np.any([ev.distances[ev.kinds.index(k)] <= r
                                 for k, r in CANDIDATE_RADII.items()], axis=0)}


def tune(items: list[Labelled], table: HashTable) -> tuple[VerifyConfig, dict[str, Any]]:
    p = all_pairs(items, table)
    info = np.asarray(table.info)
    blank = np.array([i.id.startswith("blank/") for i in items])
    guard = float(np.sqrt(info[blank].max() * info[~blank].min())) if blank.any() else 3.0
    guard = round(guard, 1)
    ok = p["candidate"] & ~(p["info"] < guard)
    coef = _logistic(p["d"][:, ok].T.astype(float), p["same"][ok].astype(float))
    w = np.maximum(-coef[:-1], 0)
    weights = {k: round(float(x), 2) for k, x in zip(STRUCTURAL, w / w.sum(), strict=True)}
    colourful = p["orig_edit"] & (p["color"] >= 0) & (p["edit"] != "grayscale") & ok
    max_color = int(np.ceil(np.percentile(p["color"][colourful], 99.5)))
    config = VerifyConfig(weights=weights, min_information=guard, max_color=max_color)
    weighted = weighted_distance(p["d"], config)
    agree = (p["color"] < 0) | (p["color"] <= max_color)
    best = 0.0
    curve = []
    for t in np.arange(4, 24.01, 0.5):
        pred = ok & agree & (weighted <= t)
        tp, fp = int((pred & p["same"]).sum()), int((pred & ~p["same"]).sum())
        precision = tp / (tp + fp) if tp + fp else 1.0
        curve.append({"threshold": float(t), "precision": precision, "false_pairs": fp,
                      "recall": float(pred[p["orig_edit"]].mean())})
        if precision >= TUNING_PRECISION:
            best = float(t)
    config = replace(config, max_weighted=best)
    facts = {"information_blank_max": float(info[blank].max()) if blank.any() else None,
             "information_pictures_min": float(info[~blank].min()),
             "logistic": [float(c) for c in coef], "threshold_curve": curve}
    return config, facts


def baseline(items: list[Labelled], table: HashTable) -> dict[str, Any]:
    """The previous rule: any kind within its old threshold (mirror derived), groups as
    connected components."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(table)
    a, b = np.triu_indices(n, 1)
    claim = np.zeros(len(a), bool)
    for kind, t in OLD_THRESHOLDS.items():
        v = table.values[:, table.kinds.index(kind)]
        d = np.bitwise_count(v[a] ^ v[b])
        m = np.minimum(np.bitwise_count(mirror_values(kind, v[a]) ^ v[b]),
                       np.bitwise_count(mirror_values(kind, v[b]) ^ v[a]))
        claim |= np.minimum(d, m) <= t
    family = np.array([i.family for i in items])
    edit = np.array([i.edit for i in items])
    same = family[a] == family[b]
    oe = same & ((edit[a] == ORIGINAL) ^ (edit[b] == ORIGINAL))
    oedit = np.where(edit[a] == ORIGINAL, edit[b], edit[a])
    graph = coo_matrix((np.ones(int(claim.sum())), (a[claim], b[claim])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    together = labels[a] == labels[b]
    tp = int((claim & same).sum())
    return {
        "precision": tp / max(1, int(claim.sum())), "false_pairs": int((claim & ~same).sum()),
        "recall_by_edit": {e: float(claim[oe & (oedit == e)].mean()) for e in EDITS
                           if (oe & (oedit == e)).any()},
        "group_precision": float(same[together].mean()) if together.any() else 1.0,
    }


def crop_resistant(items: list[Labelled], table: HashTable, families: int) -> dict[str, Any]:
    """Would imagehash's crop-resistant hash rescue the crop and border pairs that the
    hashes miss, without claiming false pairs, and at what cost?"""
    import imagehash

    from services.indexer.evaluation import thumbnail

    by_family: dict[str, list[Labelled]] = {}
    for item in items:
        by_family.setdefault(item.family, []).append(item)
    chosen = [f for f in sorted(by_family) if not f.startswith("blank/")][:families]
    wanted = [i for f in chosen for i in by_family[f]
              if i.edit in (ORIGINAL, "crop_side", "crop_center", "border")]
    hashes: dict[str, Any] = {}
    t = time.perf_counter()
    for item in wanted:
        hashes[item.id] = imagehash.crop_resistant_hash(thumbnail(item.load()))
    per_image = (time.perf_counter() - t) / max(1, len(wanted))
    found: dict[str, list[bool]] = {}
    for f in chosen:
        original = next(i for i in by_family[f] if i.edit == ORIGINAL)
        for i in by_family[f]:
            if i.id in hashes and i.edit != ORIGINAL:
                match = hashes[original.id].matches(hashes[i.id])
                found.setdefault(i.edit, []).append(bool(match))
    originals = [i for i in wanted if i.edit == ORIGINAL]
    false = sum(hashes[x.id].matches(hashes[y.id]) for k, x in enumerate(originals)
                for y in originals[k + 1:])
    return {"families": len(chosen), "ms_per_image": round(per_image * 1000, 1),
            "recall_by_edit": {e: float(np.mean(v)) for e, v in found.items()},
            "false_pairs_among_originals": int(false),
            "original_pairs": len(originals) * (len(originals) - 1) // 2}


def _table(title: str, scores: Scores) -> str:
    return format_scores(scores, title=title, worst_families=5)


def false_families(items: list[Labelled], scores: Scores, top: int = 12) -> list[list[Any]]:
    """Which pairs of families the false pairs join, most first."""
    family = {i.id: i.family for i in items}
    counts: dict[tuple[str, str], int] = {}
    for a, b in scores.false_pairs:
        key = tuple(sorted((family[a], family[b])))
        counts[key] = counts.get(key, 0) + 1  # type: ignore[index]
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [[a, b, n] for (a, b), n in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", default="met,blank", help="sets that choose the settings")
    parser.add_argument("--test", default="portraits,wallpapers,skimage",
                        help="sets the figures are reported on")
    parser.add_argument("--cache", type=Path, default=CACHE, help="pictures cache folder")
    parser.add_argument("--crop-resistant", type=int, default=0, metavar="N",
                        help="also measure the crop-resistant hash on N test families")
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    args = parser.parse_args()
    tune_sets = [s for s in args.tune.split(",") if s]
    test_sets = [s for s in args.test.split(",") if s]
    if set(tune_sets) & set(test_sets):
        raise SystemExit("a set cannot both choose the settings and be reported on")
    load_before = os.getloadavg()[0]
    label = run_label()

    tune_items = labelled(tune_sets, args.cache)
    tune_table = hashed(tune_items, "tune")
    test_items = labelled(test_sets, args.cache)
    test_table = hashed(test_items, "test")

    chosen, facts = tune(tune_items, tune_table)
    shipped = VerifyConfig()
    out: list[str] = []
    results: dict[str, Any] = {
        **label, "tune_sets": tune_sets, "test_sets": test_sets,
        "hash_version": algorithm_version(), "candidate_radii": CANDIDATE_RADII,
        "chosen": {"weights": dict(chosen.weights), "max_weighted": chosen.max_weighted,
                   "min_information": chosen.min_information, "max_color": chosen.max_color},
        "shipped": {"weights": dict(shipped.weights), "max_weighted": shipped.max_weighted,
                    "min_information": shipped.min_information,
                    "max_color": shipped.max_color},
        "tuning_facts": facts,
    }
    out.append(f"settings chosen on {'+'.join(tune_sets)}: {results['chosen']}")
    out.append(f"settings shipped (verify.py):  {results['shipped']}")
    for side, items, table in (("tuning", tune_items, tune_table),
                               ("test", test_items, test_table)):
        for name, config in (("shipped", shipped), ("chosen", chosen)):
            s = score(items, table, config=config)
            results[f"{side}_{name}"] = s.as_json()
            results[f"{side}_{name}"]["false_pairs_by_families"] = false_families(items, s)
            sets = "+".join(tune_sets if side == "tuning" else test_sets)
            out.append("\n" + _table(f"== {side} set ({sets}), {name} settings", s))
            if s.false_pairs:
                out.append("false pairs join (family, family, pairs): " + "; ".join(
                    f"{a} ~ {b}: {n}" for a, b, n in false_families(items, s, top=8)))
        base = baseline(items, table)
        results[f"{side}_baseline"] = base
        out.append(f"-- baseline on the {side} set (any kind within {OLD_THRESHOLDS}, "
                   f"connected groups): precision {base['precision']:.4f} "
                   f"({base['false_pairs']} false), dup_group precision "
                   f"{base['group_precision']:.4f}; recall " + ", ".join(
                       f"{e} {r:.2f}" for e, r in base["recall_by_edit"].items()))
    if args.crop_resistant:
        cr = crop_resistant(test_items, test_table, args.crop_resistant)
        results["crop_resistant"] = cr
        out.append(f"\ncrop-resistant hash on {cr['families']} test families: "
                   f"{cr['ms_per_image']} ms per picture; matches its original: " + ", ".join(
                       f"{e} {r:.2f}" for e, r in cr["recall_by_edit"].items())
                   + f"; {cr['false_pairs_among_originals']} false matches among "
                   f"{cr['original_pairs']} pairs of different originals")
    results["loadavg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    out.append(f"\n{label['date']}, commit {label['commit']}; load average "
               f"{results['loadavg_1min'][0]} at start, {results['loadavg_1min'][1]} at end")
    publish(results, "\n".join(out), args.out)


if __name__ == "__main__":
    main()
