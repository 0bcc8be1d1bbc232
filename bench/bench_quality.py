"""Near-duplicate quality: settings chosen on one set of pictures, reported on another.

    python bench/bench_quality.py                       # tune on met+blank, test on the rest
    python bench/bench_quality.py --tune met,blank --test portraits,wallpapers,skimage
    python bench/bench_quality.py --out bench/results/quality.json --crop-resistant 40

Pictures come from bench/pictures.py (fetched once into its cache). Every picture of a set
is a family of its own, planted with every edit of services/replica/variants.py (resize,
jpeg, noise, brightness, grayscale, crop_center, crop_side, border, rotate, mirror, text),
``blank`` pages too: their copies are what the plain rule is chosen to find, the pages
themselves the hard negatives of every rule.

Each picture is hashed and embedded (lookalike.embedding, the installed model) from its
thumbnail as the crawl does; both are cached in bench/results by the pictures and versions.

1. **Tune** on the tuning sets only: the verifier's weights (a logistic regression of "same
   family" on the four structural distances of candidate pairs), the information guard
   (between the blank pages' highest and the pictures' lowest information), the colour limit
   (what 99.5% of the colourful original-edit pairs stay within), the weighted-distance
   threshold (the largest keeping the tuning precision at 0.999), and the embedding rules
   (``tune_embedding``: the veto below what 99.5% of original-edit pairs' cosines stay
   above; the cosine and looser distance at which pairs are claimed, finding the most
   original-edit pairs while claiming no different-family pair beyond the hash rule), all
   without the blank pages' planted copies; then the plain rule (``tune_plain``: colour and
   grey-layout limits for pairs below the information guard, claiming no pair of different
   pictures) with them; then the colour limit where a pair's pictures align
   (``tune_local_color``: what 99.5% of the original-edit pairs compared in colour, their
   cells agreeing, stay within); then how much dilution by neutral paper the colour check forgives
   (``tune_dilution``: over the pairs the whole pipeline claims with the colour check off,
   the rule adding no pair of different pictures that finds most copies).
   Hard negatives are not planted on the tuning side on purpose: the held-out sets bring
   their own (light and dark variants of one wallpaper, portraits painted over one another,
   a stereo pair), so they measure what the settings do on related pictures they never saw.
   A family whose original has exactly the pixels of an earlier one's is left out
   (``without_identical``: scikit-image's ``chessboard_RGB`` is ``chessboard_GRAY`` in three
   equal channels), as claiming a picture's copy is no false pair.
2. **Report** on both sets, the test sets having chosen nothing, through the indexer's own
   pipeline (services.indexer.evaluation.score: candidates, verification, complete-linkage
   groups): pair precision, recall per edit, dup_group precision; with hashes alone, with
   the settings shipped (lookalike.settings, services/indexer/verify.py) on hash candidates
   and with embedding kNN candidates too (``EMBEDDING_CANDIDATES`` per picture), without
   and with local evidence (``shipped``: each picture's verification view made from its
   thumbnail as the workers make it, compared for the pairs it could change, as the
   indexer does), the rule before colours were compared where the pictures align
   (``previous``: the colour layouts alone, with local evidence), with the ones just chosen
   (no local evidence; the colour comparison shipped), and with the baseline measured in
   the same run: the previous rule (any kind within phash 10 / dhash 8 / whash
   2 / ahash 2, groups as connected components).
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
from services.indexer import duplicates
from services.indexer.bits import mirror_values
from services.indexer.duplicates import (
    COLOR_DILUTION,
    colorless,
    diluted_distance,
    mirror_cells,
    pair_evidence,
)
from services.indexer.evaluation import (
    ORIGINAL,
    Examined,
    Labelled,
    Scores,
    examine_pictures,
    format_scores,
    labelled_pictures,
    local_evidence,
    score,
    subset,
    without_identical,
)
from services.indexer.table import HashTable
from services.indexer.verify import (
    CANDIDATE_RADII,
    EMBEDDING_CANDIDATES,
    MAX_DILUTED_COLOR,
    STRUCTURAL,
    VerifyConfig,
    weighted_distance,
)
from services.replica.variants import EDITS

RESULTS = Path(__file__).resolve().parent / "results"
# Sets of plain pictures: their hashes say nothing, so the hash and embedding rules are
# chosen without their planted copies (the pages alone are those rules' hard negatives);
# the plain rule (``tune_plain``) is chosen on them with their copies.
PLAIN_SETS = {"blank"}
# Dilutions by neutral paper the colour check may forgive (tune_dilution).
DILUTIONS = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
OLD_THRESHOLDS = {"phash": 10, "dhash": 8, "whash": 2, "ahash": 2}
TUNING_PRECISION = 0.999
KEEP = 0.995  # share of the tuning copies a limit chosen on copies alone keeps


def labelled(names: list[str], cache: Path) -> list[Labelled]:
    items: list[Labelled] = []
    for name in names:
        folder = fetch(name, cache)
        families = {f"{name}/{p.stem}": [p] for p in pictures(folder)}
        items.extend(labelled_pictures(families, EDITS))
    return items


def _cache(kind: str, label: str, items: list[Labelled], version: str) -> Path:
    key = hashlib.sha256(("\n".join(i.id for i in items) + version).encode())
    return RESULTS / f"quality-{kind}-{label}-{key.hexdigest()[:12]}.npz"


def examined(items: list[Labelled], label: str, embedder: Any) -> Examined:
    """Hashes and vectors of the pictures, cached by the items' ids and the hash algorithm's
    (the embedding model's) version."""
    hashes = _cache("hashes", label, items, algorithm_version())
    vectors = _cache("vectors", label, items, embedder.version)
    if hashes.exists() and vectors.exists():
        z = np.load(hashes)
        table = HashTable.from_arrays(
            z["ids"].tolist(),
            {k: z[k] for k in HASH_KINDS},
            info=z["info"],
            color=z["color"].tolist(),
        )
        return Examined(table, np.load(vectors)["vectors"])
    from tqdm import tqdm  # type: ignore[import-untyped]

    t = time.perf_counter()
    with tqdm(
        total=len(items), unit="img", desc=f"hashing and embedding {label}", file=sys.stderr
    ) as bar:
        seen = examine_pictures(items, embedder, progress=bar.update)
    print(
        f"hashed and embedded {len(items)} {label} pictures in {time.perf_counter() - t:.0f}s",
        file=sys.stderr,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = seen.table
    assert table.color is not None and table.info is not None and seen.vectors is not None
    colors = [row.astype(np.int8).tobytes().hex() for row in table.color]
    arrays: dict[str, Any] = {
        "ids": table.ids,
        "info": table.info,
        "color": np.array(colors),
        **{k: table.values[:, j] for j, k in enumerate(table.kinds)},
    }
    np.savez(hashes, **arrays)
    np.savez(vectors, vectors=seen.vectors)
    return seen


def _logistic(x: np.ndarray, y: np.ndarray, steps: int = 50, ridge: float = 1e-3) -> np.ndarray:
    """Weights (intercept last) of a logistic regression by Newton's method."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + ridge * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + ridge * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def all_pairs(items: list[Labelled], seen: Examined) -> dict[str, np.ndarray]:
    """Evidence for every pair of the table (fine for a few thousand pictures): hash
    distances, information, colour, embedding cosine, and whether the indexer would make the
    pair a candidate (by hash radius, or among either picture's ``EMBEDDING_CANDIDATES`` nearest by
    embedding)."""
    table = seen.table
    n = len(table)
    a, b = np.triu_indices(n, 1)
    assert table.info is not None and table.color is not None and seen.vectors is not None
    ev = pair_evidence(table.values, table.kinds, table.info, table.color, a, b)
    sims = seen.vectors @ seen.vectors.T  # (n, n): the pairs' rows would take n^2 * dim
    cos = sims[a, b].astype(np.float64)
    np.fill_diagonal(sims, -np.inf)
    kth = -np.partition(-sims, EMBEDDING_CANDIDATES - 1, axis=1)[:, EMBEDDING_CANDIDATES - 1]
    family = np.array([i.family for i in items])
    edit = np.array([i.edit for i in items])
    same = family[a] == family[b]
    one_original = (edit[a] == ORIGINAL) ^ (edit[b] == ORIGINAL)
    return {
        "a": a,
        "b": b,
        "d": ev.structural(),
        "info": ev.information,
        "color": ev.color,
        "mirrored": ev.mirrored,
        "cos": cos,
        "same": same,
        "orig_edit": same & one_original,
        "edit": np.where(edit[a] == ORIGINAL, edit[b], edit[a]),
        "candidate": np.any(
            [ev.distances[ev.kinds.index(k)] <= r for k, r in CANDIDATE_RADII.items()], axis=0
        ),
        "knn": (cos >= kth[a]) | (cos >= kth[b]),
    }


def tune(items: list[Labelled], seen: Examined) -> tuple[VerifyConfig, dict[str, Any]]:
    """Every setting, from the tuning pictures: the hash and embedding rules without the
    plain pages' planted copies, the plain rule with them."""
    plain_copy = [i.family.split("/")[0] in PLAIN_SETS and i.edit != ORIGINAL for i in items]
    pictures = [i for i, copy in zip(items, plain_copy, strict=True) if not copy]
    config, facts = tune_rules(pictures, subset(pictures, seen))
    plain, plain_facts = tune_plain(items, seen, config)
    config = replace(config, **plain)
    aligned, aligned_facts = tune_local_color(items, config)
    config = replace(config, **aligned)
    return config, {
        **facts,
        **plain_facts,
        **aligned_facts,
        **tune_dilution(items, seen, config),
    }


def tune_rules(items: list[Labelled], seen: Examined) -> tuple[VerifyConfig, dict[str, Any]]:
    table = seen.table
    p = all_pairs(items, seen)
    info = np.asarray(table.info)
    blank = np.array([i.family.split("/")[0] in PLAIN_SETS for i in items])
    guard = float(np.sqrt(info[blank].max() * info[~blank].min())) if blank.any() else 3.0
    guard = round(guard, 1)
    ok = p["candidate"] & ~(p["info"] < guard)
    coef = _logistic(p["d"][:, ok].T.astype(float), p["same"][ok].astype(float))
    w = np.maximum(-coef[:-1], 0)
    weights = {k: round(float(x), 2) for k, x in zip(STRUCTURAL, w / w.sum(), strict=True)}
    colourful = p["orig_edit"] & (p["color"] >= 0) & (p["edit"] != "grayscale") & ok
    plain = np.full(len(ok), -1.0)  # the plain colour difference (no dilution forgiven)
    assert table.color is not None
    has = np.flatnonzero(p["color"] >= 0)
    ca, cb = np.asarray(table.color[p["a"][has]]), np.asarray(table.color[p["b"][has]])
    ca = np.where(p["mirrored"][has][:, None], mirror_cells(ca, 3), ca)
    plain[has] = diluted_distance(ca, cb, 1.0)
    max_color = int(np.ceil(np.percentile(plain[colourful], 99.5)))
    config = VerifyConfig(
        weights=weights,
        min_information=guard,
        max_color=max_color,
        min_cosine=None,
        loose_weighted=None,
        veto_cosine=None,
    )
    weighted = weighted_distance(p["d"], config)
    agree = (plain < 0) | (plain <= max_color)
    best = 0.0
    curve = []
    for t in np.arange(4, 24.01, 0.5):
        pred = ok & agree & (weighted <= t)
        tp, fp = int((pred & p["same"]).sum()), int((pred & ~p["same"]).sum())
        precision = tp / (tp + fp) if tp + fp else 1.0
        curve.append(
            {
                "threshold": float(t),
                "precision": precision,
                "false_pairs": fp,
                "recall": float(pred[p["orig_edit"]].mean()),
            }
        )
        if precision >= TUNING_PRECISION:
            best = float(t)
    config = replace(config, max_weighted=best)
    embedding, embedding_facts = tune_embedding(p, weighted, ~(p["info"] < guard) & agree, best)
    config = replace(config, **embedding)
    facts = {
        "information_blank_max": float(info[blank].max()) if blank.any() else None,
        "information_pictures_min": float(info[~blank].min()),
        "logistic": [float(c) for c in coef],
        "threshold_curve": curve,
        **embedding_facts,
    }
    return config, facts


def tune_local_color(
    items: list[Labelled], config: VerifyConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The colour limit where a pair's pictures align (``local_max_color``): what ``KEEP``
    of the tuning original-edit pairs compared in colour (lookalike.localmatch.aligned_color)
    whose cells agree (``config.local_min_score``: the pairs the colours decide) stay
    within, rounded up to 0.1."""
    originals = {i.family: i.id for i in items if i.edit == ORIGINAL}
    pairs = sorted(
        (min(originals[i.family], i.id), max(originals[i.family], i.id), i.edit)
        for i in items
        if i.edit != ORIGINAL and i.family in originals
    )
    found = local_evidence(items)([a for a, _, _ in pairs], [b for _, b, _ in pairs])
    agree = found.score >= (config.local_min_score or 0.0)
    known = np.isfinite(found.color) & agree
    if not known.any():
        return {}, {"local_color": None}
    limit = float(np.ceil(np.percentile(found.color[known], 100 * KEEP) * 10) / 10)
    edits = np.array([e for _, _, e in pairs])
    return {"local_max_color": limit}, {
        "local_color": {
            "original_edit_pairs": len(pairs),
            "compared_in_colour_cells_agreeing": int(known.sum()),
            "percentiles_50_90_99_max": [
                round(float(x), 2) for x in np.percentile(found.color[known], [50, 90, 99, 100])
            ],
            "beyond_by_edit": {
                str(e): int(((found.color > limit) & known & (edits == e)).sum())
                for e in sorted(set(edits.tolist()))
            },
        }
    }


def tune_dilution(items: list[Labelled], seen: Examined, config: VerifyConfig) -> dict[str, Any]:
    """How much dilution by neutral paper the colour check forgives
    (``duplicates.diluted_distance``), from the pairs the whole pipeline (``config``, local
    evidence on) claims with the colour check off whose plain colour difference is beyond
    ``max_color``: among the rules "each cell's stronger colour scaled down by up to k, the
    difference then within t (0.5 steps)" that add no pair of different families, the one
    finding most original-edit pairs, then most same-family pairs; ties go to the smaller k,
    then the smaller t."""
    from services.indexer.duplicates import near_duplicates

    family = {i.id: i.family for i in items}
    edit = {i.id: i.edit for i in items}
    row = {image: k for k, image in enumerate(seen.table.ids.tolist())}
    assert seen.table.color is not None
    _, pairs, _ = near_duplicates(
        seen.table,
        CANDIDATE_RADII,
        replace(config, max_color=None, plain_max_color=None),
        seen.vectors,
        EMBEDDING_CANDIDATES,
        local_evidence(items),
    )
    a = np.array([row[x.a] for x in pairs], dtype=np.int64)
    b = np.array([row[x.b] for x in pairs], dtype=np.int64)
    ca, cb = seen.table.color[a], seen.table.color[b]
    ca = np.where(np.array([x.mirrored for x in pairs])[:, None], mirror_cells(ca, 3), ca)
    colourful = ~(colorless(ca) | colorless(cb))
    pool = colourful & (diluted_distance(ca, cb, 1.0) > (config.max_color or 0))
    ca, cb = ca[pool], cb[pool]
    kept = [x for x, k in zip(pairs, pool.tolist(), strict=True) if k]
    same = np.array([family[x.a] == family[x.b] for x in kept], dtype=bool)
    oe = same & np.array([(edit[x.a] == ORIGINAL) ^ (edit[x.b] == ORIGINAL) for x in kept])
    best: tuple[tuple[int, int, float, float], float, float] | None = None
    for k in DILUTIONS:
        d = diluted_distance(ca, cb, k)
        for t in np.arange(0.5, 12.01, 0.5):
            claim = d <= t
            if (claim & ~same).any():
                break
            key = (int((claim & oe).sum()), int((claim & same).sum()), -k, -float(t))
            if best is None or key > best[0]:
                best = (key, k, float(t))
    facts = {
        "pairs_beyond_max_color": len(kept),
        "same_family": int(same.sum()),
        "original_edit": int(oe.sum()),
    }
    if best is None:
        return {"dilution_rule": None, **facts}
    return {
        "dilution_rule": {
            "color_dilution": best[1],
            "max_diluted_color": best[2],
            "original_edit_pairs_found": best[0][0],
            "same_family_pairs_found": best[0][1],
            **facts,
        }
    }


def tune_plain(
    items: list[Labelled], seen: Examined, config: VerifyConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plain rule, from the candidate pairs (hash radius or embedding kNN) below the
    information guard whose pictures are both colourful: among the rules "colour layouts
    within c (1 step), grey layouts (lookalike.localmatch.layout_distance) within t (0.5
    steps)" that claim no pair of different families, the one finding most original-edit
    pairs; ties go to the lower c, then the lower t (the tightest rule finding as many)."""
    from lookalike import localmatch
    from services.indexer.evaluation import picture_views

    p = all_pairs(items, seen)
    pool = np.flatnonzero(
        (p["candidate"] | p["knn"]) & (p["info"] < config.min_information) & (p["color"] >= 0)
    )
    view = picture_views(items)
    layouts: dict[int, np.ndarray] = {}
    for r in sorted(set(p["a"][pool].tolist()) | set(p["b"][pool].tolist())):
        picture = view(items[r].id)
        assert picture is not None
        layouts[r] = localmatch.layout(picture)
    distance = np.array(
        [
            localmatch.layout_distance(layouts[x], layouts[y])
            for x, y in zip(p["a"][pool], p["b"][pool], strict=True)
        ]
    )
    color, same, oe = p["color"][pool], p["same"][pool], p["orig_edit"][pool]
    best: tuple[tuple[int, int, float], int, float] | None = None
    for c in range(1, (config.max_color or 16) + 1):
        for t in np.arange(0.5, 40.01, 0.5):
            claim = (color <= c) & (distance <= t)
            if (claim & ~same).any():
                continue
            key = (int((claim & oe).sum()), -c, -float(t))
            if best is None or key > best[0]:
                best = (key, c, float(t))
    edits = p["edit"][pool]
    if best is None:
        return {"plain_max_color": None, "plain_max_layout": None}, {"plain_rule": None}
    rule = {"plain_max_color": best[1], "plain_max_layout": best[2]}
    claim = (color <= best[1]) & (distance <= best[2])
    nearest = distance[~same & (color <= best[1])]
    every_oe = p["orig_edit"] & (p["info"] < config.min_information)
    return rule, {
        "plain_rule": {
            **rule,
            "pairs_judged": len(pool),
            "original_edit_pairs_below_guard": int(every_oe.sum()),
            "found": int((claim & oe).sum()),
            "found_by_edit": {
                e: [
                    int((claim & oe & (edits == e)).sum()),
                    int((every_oe & (p["edit"] == e)).sum()),
                ]
                for e in EDITS
            },
            "nearest_different_pair": float(nearest.min()) if len(nearest) else None,
        }
    }


def tune_embedding(
    p: dict[str, np.ndarray], weighted: np.ndarray, usable: np.ndarray, max_weighted: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The embedding rules, from the tuning pairs (``usable``: informative, colours agree):

    - ``veto_cosine``: what 99.5% of the original-edit pairs stay above (0.01 steps down),
      like the colour limit: a hash match whose embeddings disagree more is refused;
    - ``min_cosine`` and ``loose_weighted``: among the rules "claim a candidate (by hash
      radius or embedding kNN) with cosine >= c and weighted distance <= w" that claim no
      pair of different families on top of the hash rule, the one finding most
      original-edit pairs; ties go to the higher cosine, then the lower distance."""
    cos, same, oe = p["cos"], p["same"], p["orig_edit"]
    veto = float(np.floor(np.percentile(cos[oe & usable], 0.5) * 100) / 100)
    by_hash = usable & p["candidate"] & (weighted <= max_weighted) & ~(cos < veto)
    # only the pairs the loosest rule could add matter: keep the grid cheap
    pool = usable & (p["candidate"] | p["knn"]) & ~by_hash & (cos >= 0.5)
    c, w, s, o = cos[pool], weighted[pool], same[pool], oe[pool]
    found_by_hash = int((by_hash & oe).sum())
    best: tuple[tuple[int, float, float], float, float] | None = None
    for min_cosine in np.round(np.arange(0.70, 0.991, 0.01), 2):
        for loose in np.arange(max_weighted, 40.01, 0.5):
            claim = (c >= min_cosine) & (w <= loose)
            if (claim & ~s).any():
                continue
            key = (int((claim & o).sum()), float(min_cosine), -float(loose))
            if best is None or key > best[0]:
                best = (key, float(min_cosine), float(loose))
    if best is None:
        return {"veto_cosine": veto}, {"embedding_rule": None}
    rule = {"veto_cosine": veto, "min_cosine": best[1], "loose_weighted": best[2]}
    vetoed = usable & p["candidate"] & (weighted <= max_weighted) & (cos < veto)
    return rule, {
        "embedding_rule": {
            **rule,
            "original_edit_pairs": int(oe.sum()),
            "found_by_hash_with_veto": found_by_hash,
            "found_with_embedding_rule": found_by_hash + best[0][0],
            "vetoed_hash_pairs": {
                "same_family": int((vetoed & same).sum()),
                "different_families": int((vetoed & ~same).sum()),
            },
        }
    }


def baseline(items: list[Labelled], table: HashTable) -> dict[str, Any]:
    """The previous rule: any kind within its old threshold (mirror derived), groups as
    connected components."""
    from scipy.sparse import coo_matrix  # type: ignore[import-untyped]
    from scipy.sparse.csgraph import connected_components  # type: ignore[import-untyped]

    n = len(table)
    a, b = np.triu_indices(n, 1)
    claim = np.zeros(len(a), bool)
    for kind, t in OLD_THRESHOLDS.items():
        v = table.values[:, table.kinds.index(kind)]
        d = np.bitwise_count(v[a] ^ v[b])
        m = np.minimum(
            np.bitwise_count(mirror_values(kind, v[a]) ^ v[b]),
            np.bitwise_count(mirror_values(kind, v[b]) ^ v[a]),
        )
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
        "precision": tp / max(1, int(claim.sum())),
        "false_pairs": int((claim & ~same).sum()),
        "recall_by_edit": {
            e: float(claim[oe & (oedit == e)].mean()) for e in EDITS if (oe & (oedit == e)).any()
        },
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
    wanted = [
        i
        for f in chosen
        for i in by_family[f]
        if i.edit in (ORIGINAL, "crop_side", "crop_center", "border")
    ]
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
    false = sum(
        hashes[x.id].matches(hashes[y.id])
        for k, x in enumerate(originals)
        for y in originals[k + 1 :]
    )
    return {
        "families": len(chosen),
        "ms_per_image": round(per_image * 1000, 1),
        "recall_by_edit": {e: float(np.mean(v)) for e, v in found.items()},
        "false_pairs_among_originals": int(false),
        "original_pairs": len(originals) * (len(originals) - 1) // 2,
    }


def _settings(config: VerifyConfig) -> dict[str, Any]:
    return {
        "weights": dict(config.weights),
        "max_weighted": config.max_weighted,
        "min_information": config.min_information,
        "max_color": config.max_color,
        "min_cosine": config.min_cosine,
        "loose_weighted": config.loose_weighted,
        "veto_cosine": config.veto_cosine,
        "local_min_score": config.local_min_score,
        "local_claim_inliers": config.local_claim_inliers,
        "cells_lift_veto": config.cells_lift_veto,
        "plain_max_color": config.plain_max_color,
        "plain_max_layout": config.plain_max_layout,
        "local_max_color": config.local_max_color,
    }


def _table(title: str, scores: Scores) -> str:
    return format_scores(scores, title=title, worst_families=5)


def false_families(items: list[Labelled], scores: Scores, top: int = 12) -> list[list[Any]]:
    """Which pairs of families the false pairs join, most first."""
    family = {i.id: i.family for i in items}
    counts: dict[tuple[str, str], int] = {}
    for a, b in scores.false_pairs:
        x, y = sorted((family[a], family[b]))
        counts[(x, y)] = counts.get((x, y), 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [[a, b, n] for (a, b), n in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", default="met,blank", help="sets that choose the settings")
    parser.add_argument(
        "--test", default="portraits,wallpapers,skimage", help="sets the figures are reported on"
    )
    parser.add_argument("--cache", type=Path, default=CACHE, help="pictures cache folder")
    parser.add_argument(
        "--crop-resistant",
        type=int,
        default=0,
        metavar="N",
        help="also measure the crop-resistant hash on N test families",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    args = parser.parse_args()
    tune_sets = [s for s in args.tune.split(",") if s]
    test_sets = [s for s in args.test.split(",") if s]
    if set(tune_sets) & set(test_sets):
        raise SystemExit("a set cannot both choose the settings and be reported on")
    load_before = os.getloadavg()[0]
    label = run_label()
    from lookalike.embedding.embedder import shared_embedder
    from lookalike.settings import load_settings

    embedder = shared_embedder(load_settings())
    if embedder is None:
        raise SystemExit(
            "embeddings are turned off (LOOKALIKE_EMBEDDINGS=0): this benchmark "
            "weighs them, turn them on"
        )

    # examined() caches by every picture of the sets; identical families go afterwards
    tune_items = labelled(tune_sets, args.cache)
    tune_items, tune_seen, identical = without_identical(
        tune_items, examined(tune_items, "tune", embedder)
    )
    test_items = labelled(test_sets, args.cache)
    test_items, test_seen, identical_test = without_identical(
        test_items, examined(test_items, "test", embedder)
    )
    identical += identical_test

    chosen, facts = tune(tune_items, tune_seen)
    shipped = VerifyConfig()
    hashes_only = replace(shipped, min_cosine=None, loose_weighted=None, veto_cosine=None)
    out: list[str] = []
    results: dict[str, Any] = {
        **label,
        "tune_sets": tune_sets,
        "test_sets": test_sets,
        "hash_version": algorithm_version(),
        "model": embedder.version,
        "candidate_radii": CANDIDATE_RADII,
        "knn": EMBEDDING_CANDIDATES,
        "chosen": _settings(chosen),
        "shipped": _settings(shipped),
        "tuning_facts": facts,
        "identical_originals_left_out": [list(p) for p in identical],
    }
    if identical:
        out.append(
            "left out, identical to an earlier family's original (family kept, left out): "
            + "; ".join(f"{a} = {b}" for a, b in identical)
        )
    out.append(f"settings chosen on {'+'.join(tune_sets)}: {results['chosen']}")
    out.append(f"settings shipped (verify.py):  {results['shipped']}")
    out.append(
        f"colour dilution chosen on {'+'.join(tune_sets)}: {facts['dilution_rule']}; shipped "
        f"(verify.py, every run below): color_dilution {COLOR_DILUTION}, "
        f"max_diluted_color {MAX_DILUTED_COLOR}"
    )
    # name, settings, embeddings weighed, embedding kNN candidates, local evidence, colour
    # dilution forgiven (duplicates.COLOR_DILUTION; 1: the plain colour difference, the rule
    # before dilution was forgiven)
    layouts_only = replace(shipped, local_max_color=None)
    runs = (
        ("hashes only", hashes_only, False, 0, False, COLOR_DILUTION),
        ("shipped, hash candidates", shipped, True, 0, False, COLOR_DILUTION),
        ("shipped, no local", shipped, True, EMBEDDING_CANDIDATES, False, COLOR_DILUTION),
        ("shipped", shipped, True, EMBEDDING_CANDIDATES, True, COLOR_DILUTION),
        (
            "previous (colour layouts)",
            layouts_only,
            True,
            EMBEDDING_CANDIDATES,
            True,
            COLOR_DILUTION,
        ),
        ("chosen", chosen, True, EMBEDDING_CANDIDATES, False, COLOR_DILUTION),
    )
    summary = [
        f"{'set':<8} {'settings':<26} {'precision':>9} {'dup_group':>9}  "
        + " ".join(f"{e[:11]:>11}" for e in EDITS)
    ]
    for side, items, seen in (("tuning", tune_items, tune_seen), ("test", test_items, test_seen)):
        sets = "+".join(tune_sets if side == "tuning" else test_sets)
        for name, config, weigh, knn, pixels, dilution in runs:
            local = local_evidence(items) if pixels else None
            t = time.perf_counter()
            duplicates.COLOR_DILUTION = dilution
            try:
                s = score(
                    items,
                    seen.table,
                    config=config,
                    vectors=seen.vectors if weigh else None,
                    knn=knn,
                    local=local,
                )
            finally:
                duplicates.COLOR_DILUTION = COLOR_DILUTION
            seconds = time.perf_counter() - t
            key = f"{side}_{name.replace(', ', '_').replace(' ', '_')}"
            results[key] = s.as_json()
            results[key]["false_pairs_by_families"] = false_families(items, s)
            results[key]["seconds"] = round(seconds, 1)
            if local is not None:
                results[key]["pairs_compared_locally"] = local.compared
            out.append(
                "\n"
                + _table(
                    f"== {side} set ({sets}), {name} settings"
                    + (f", embedding kNN {knn} candidates" if knn else ""),
                    s,
                )
            )
            if s.false_pairs:
                out.append(
                    "false pairs join (family, family, pairs): "
                    + "; ".join(f"{a} ~ {b}: {n}" for a, b, n in false_families(items, s, top=8))
                )
            summary.append(
                f"{side:<8} {name:<26} {s.precision:>9.4f} "
                f"{s.group_precision:>9.4f}  " + " ".join(f"{s.recall(e):>11.3f}" for e in EDITS)
            )
        base = baseline(items, seen.table)
        results[f"{side}_baseline"] = base
        out.append(
            f"-- baseline on the {side} set (any kind within {OLD_THRESHOLDS}, "
            f"connected groups): precision {base['precision']:.4f} "
            f"({base['false_pairs']} false), dup_group precision "
            f"{base['group_precision']:.4f}; recall "
            + ", ".join(f"{e} {r:.2f}" for e, r in base["recall_by_edit"].items())
        )
    out.append("\nsummary (recall of original-edit pairs per edit):\n" + "\n".join(summary))
    if args.crop_resistant:
        cr = crop_resistant(test_items, test_seen.table, args.crop_resistant)
        results["crop_resistant"] = cr
        out.append(
            f"\ncrop-resistant hash on {cr['families']} test families: "
            f"{cr['ms_per_image']} ms per picture; matches its original: "
            + ", ".join(f"{e} {r:.2f}" for e, r in cr["recall_by_edit"].items())
            + f"; {cr['false_pairs_among_originals']} false matches among "
            f"{cr['original_pairs']} pairs of different originals"
        )
    results["loadavg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    out.append(
        f"\n{label['date']}, commit {label['commit']}; load average "
        f"{results['loadavg_1min'][0]} at start, {results['loadavg_1min'][1]} at end"
    )
    publish(results, "\n".join(out), args.out)


if __name__ == "__main__":
    main()
