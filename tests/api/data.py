"""A small, known collection for API tests: clustered similarity edges, perceptual hashes
with planted near-duplicates, cached thumbnails of known colours, a few awkward images.

Everything the tests compare against (networkx measures, exact hamming scans) is computed
from these lists, independently of the API and the graph.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field

from PIL import Image

from lookalike.hashing import HASH_BITS, HASH_KINDS, algorithm_version

# Distinct, saturated thumbnail colours: easy to find again in a rendered PNG.
THUMB_COLORS: list[tuple[int, int, int]] = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
]


@dataclass
class Collection:
    images: list[dict] = field(default_factory=list)
    edges: list[tuple[str, str, int]] = field(default_factory=list)
    thumbs: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    # (a, b): b is a planted near-duplicate of a
    near_pairs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [i["id"] for i in self.images]

    def by_id(self, image_id: str) -> dict:
        return next(i for i in self.images if i["id"] == image_id)


def _flip(value: int, bits: int, n: int, rng: random.Random) -> int:
    for b in rng.sample(range(bits), n):
        value ^= 1 << b
    return value


def _hex(kind: str, value: int) -> str:
    return format(value, f"0{HASH_BITS[kind] // 4}x")


def make_collection(clusters: int = 6, per_cluster: int = 30, seed: int = 11) -> Collection:
    """``clusters`` groups of images; each image lists 5 similar ones, mostly of its group."""
    rng = random.Random(seed)
    col = Collection()
    groups: list[list[str]] = []
    for c in range(clusters):
        proto = {k: rng.getrandbits(HASH_BITS[k]) for k in HASH_KINDS}
        members = []
        for j in range(per_cluster):
            image_id = f"c{c}i{j:03d}"
            members.append(image_id)
            hashes = {
                k: _hex(k, _flip(proto[k], HASH_BITS[k], rng.randint(6, 20), rng))
                for k in HASH_KINDS
            }
            col.images.append(
                {
                    "id": image_id,
                    "title": f"Plate {j} of subject {c}",
                    "license": ["pdm", "cc-by", "cc-by-nc"][j % 3],
                    "aspect_ratio": [1, 1.5, 0.75][j % 3],  # int and float: exports must cope
                    "thumbnail_url": f"https://iiif.example.org/image/{image_id}/info.json",
                    "source_id": f"w{c}{j:03d}",
                    "fetched_at": 1_700_000_000_000 + j,
                    "hashed_at": 1_700_000_100_000 + j,
                    "hash_version": algorithm_version(),
                    **hashes,
                }
            )
        groups.append(members)
    everyone = [i for g in groups for i in g]
    for members in groups:
        for image_id in members:
            own = rng.sample([m for m in members if m != image_id], 4)
            other = rng.choice([m for m in everyone if m not in members])
            targets = (
                [*own, other]
                if rng.random() < 0.3
                else [*own, rng.choice([m for m in members if m != image_id and m not in own])]
            )
            col.edges.extend((image_id, t, r) for r, t in enumerate(targets, start=1))
    # Planted near-duplicates: a copy 0-3 bits away in every kind, in the same cluster.
    for c in range(clusters):
        original = col.by_id(f"c{c}i000")
        dup_id = f"c{c}dup"
        copy = {
            k: _hex(k, _flip(int(original[k], 16), HASH_BITS[k], c % 4, rng)) for k in HASH_KINDS
        }
        col.images.append(
            {
                "id": dup_id,
                "title": f"Copy of plate 0 of subject {c}",
                "license": "pdm",
                "aspect_ratio": 1.0,
                "hashed_at": 1_700_000_200_000 + c,
                "hash_version": algorithm_version(),
                **copy,
            }
        )
        col.edges.append((dup_id, original["id"], 1))
        col.near_pairs.append((original["id"], dup_id))
    # Awkward ones: an image whose thumbnail did not decode, and an isolated one.
    col.images.append({"id": "broken01", "title": "Broken thumbnail", "hash_error": "not_an_image"})
    col.images.append({"id": "lonely01", "title": "Nobody lists me"})
    # Thumbnails for cluster 0, in known colours (index by position).
    for j, image_id in enumerate(groups[0][: len(THUMB_COLORS)]):
        col.thumbs[image_id] = THUMB_COLORS[j]
    return col


def jpeg(color: tuple[int, int, int], size: int = 96) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="JPEG", quality=95)
    return buf.getvalue()
