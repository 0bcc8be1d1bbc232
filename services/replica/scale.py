"""The scale catalogue: N synthetic images (100k and more) for crawl benchmarks.

Nothing large is written: per image the collection stores a 16-d unit vector, an aspect
ratio, an average colour and a few small codes; documents and pictures are derived from
them on request (``procedural``). The vectors are clustered (images around N/40 centres plus a
uniform background; see ``scale_latents``), so that the exact top-5
lists form what a breadth-first crawl of the real catalogue meets: tight neighbourhoods of
near-identical pictures chained into one big connected component, with some images that
nobody lists. Builds are deterministic in (N, seed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from lookalike.folders import replaced_atomically
from services.replica import procedural, shapes
from services.replica.build_key import build_key, check_replaceable, existing_key
from services.replica.collection import CollectionData, CollectionError
from services.replica.similarity import N_SIMILAR

SCALE_VERSION = 2


def _unit_rows(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=1, keepdims=True)


LATENT_DIM = 5


def scale_latents(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit latent points on S^4 and the orthonormal 16x5 map that embeds them.

    60% of the images sit in clusters around N/40 centres (families of similar plates), 40%
    spread uniformly and knit the clusters together. Cluster spreads are set relative to the
    typical nearest-neighbour spacing at this N, so the picture does not change with scale:
    a breadth-first walk of the directed 5-NN graph from almost any seed reaches ~99% of the
    collection, a few seeds sit in small closed families, and ~0.5% of images are listed by
    nobody, as in a real similarity index.
    """
    rng = np.random.default_rng(seed)
    k = max(1, n // 40)
    spacing = (26.3 / n) ** 0.25  # (area of S^4 / n) ** (1/4): typical neighbour distance
    centres = _unit_rows(rng.standard_normal((k, LATENT_DIM)))
    owner = rng.integers(0, k, n)
    z = rng.standard_normal((n, LATENT_DIM))
    clustered = rng.random(n) >= 0.4
    spread = rng.uniform(0.5, 2.5, n)[:, None] * spacing / np.sqrt(LATENT_DIM)
    z[clustered] = (centres[owner] + spread * rng.standard_normal((n, LATENT_DIM)))[clustered]
    embed, _ = np.linalg.qr(rng.standard_normal((procedural.PROC_DIM, LATENT_DIM)))
    return _unit_rows(z), embed


def scale_vectors(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(16-d unit vectors, their 5-d latents); ``v . w == z_v . z_w`` as the map is orthonormal."""
    z, embed = scale_latents(n, seed)
    return _unit_rows(z @ embed.T).astype(np.float32), z


def exact_top5(latents: np.ndarray) -> np.ndarray:
    """Exact 5 nearest other points (largest dot product) via a KD-tree on the unit latents.

    On unit vectors, Euclidean order equals dot-product order, and in 5 dimensions a
    KD-tree answers 100k queries in about a second where a 100k x 100k matmul takes minutes.
    """
    tree = cKDTree(latents)
    _dist, idx = tree.query(latents, k=N_SIMILAR + 1, workers=2)
    out = np.full((len(latents), N_SIMILAR), -1, dtype=np.int32)
    for row in range(len(latents)):
        others = [j for j in idx[row].tolist() if j != row and j < len(latents)]
        out[row, : min(N_SIMILAR, len(others))] = others[:N_SIMILAR]
    return out


def scale_ids(n: int, seed: int) -> list[str]:
    ids, seen = [], set()
    for i in range(n):
        salt = 0
        image_id = shapes.canonical_id("scale", str(seed), str(i))
        while image_id in seen:
            salt += 1
            image_id = shapes.canonical_id("scale", str(seed), str(i), str(salt))
        seen.add(image_id)
        ids.append(image_id)
    return ids


def build_scale_collection(out_dir: Path, n: int, *, seed: int = 0, force: bool = False) -> Path:
    """Build (or reuse) a synthetic collection of ``n`` images in ``out_dir``."""
    if n < 2:
        raise CollectionError(f"a scale collection needs at least 2 images, not {n}")
    out_dir = Path(out_dir)
    key = build_key({"kind": "scale", "n": n, "seed": seed, "scale_version": SCALE_VERSION})
    if not force and existing_key(out_dir) == key:
        return out_dir
    check_replaceable(out_dir)

    gen_ids = scale_ids(n, seed)
    vecs, latents = scale_vectors(n, seed)
    rng = np.random.default_rng(seed + 1)
    aspects = np.clip(np.exp(rng.normal(0.0, 0.35, n)), 0.4, 2.5).astype(np.float32)
    colors = procedural.average_colors(vecs)
    licences = rng.choice(len(procedural.LICENSES), n, p=[0.5, 0.3, 0.1, 0.05, 0.05])
    years = np.where(rng.random(n) < 0.8, rng.integers(1500, 2020, n), 0).astype(np.int16)
    works = (np.arange(n) // 3).astype(np.int32)

    order = np.argsort(np.array(gen_ids))
    similar = exact_top5(latents[order])
    ids = [gen_ids[i] for i in order]
    rows = np.arange(n, dtype=np.int32)
    data = CollectionData(
        ids=ids,
        vectors={procedural.PROC_DIM: (rows, vecs[order])},
        proc={
            "rows": rows,
            "aspect": aspects[order],
            "color": colors[order],
            "license": licences[order].astype(np.uint8),
            "year": years[order],
            "work": works[order],
            "seed": np.array(seed),
        },
        manifest={
            "kind": "scale",
            "build_key": key,
            "n": n,
            "seed": seed,
            "scale_version": SCALE_VERSION,
        },
    )
    data.similar = similar
    with replaced_atomically(out_dir, prefix=".replica-build-") as tmp:
        (tmp / "images").mkdir()
        data.save(tmp)
    return out_dir
