"""Pictures and metadata generated from an image's id and vector: the scale catalogue.

A 100k-image collection of real files would be gigabytes; the scale mode instead stores a
small vector per image and draws its picture on request. The picture is a smooth function
of the vector (two colours blended by a few sinusoids whose frequencies and phases come
from the vector), so images with close vectors look alike and get close perceptual hashes,
which is what a crawl benchmark of near-duplicate search needs. ``render_batch`` draws the
pictures; ``record`` writes an image's catalogue record (title, artist, genre and subject come
from its source work's number, colour and licence from the stored arrays). Everything is
deterministic.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from services.replica import shapes

PROC_DIM = 16
BASE_WIDTH = 1024  # nominal full-size width of a generated picture


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def render_batch(
    vectors: np.ndarray,
    width: int,
    height: int,
    window: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0),
) -> np.ndarray:
    """Draw ``(B, height, width, 3)`` uint8 pictures for ``(B, PROC_DIM)`` vectors.

    ``window`` is the region of the unit square to draw (x0, y0, x1, y1), so a IIIF region
    request renders only what it returns.
    """
    v = np.asarray(vectors, dtype=np.float32).reshape(-1, PROC_DIM) * 4.0
    x0, y0, x1, y1 = window
    xs = (x0 + (np.arange(width, dtype=np.float32) + 0.5) / width * (x1 - x0))[None, None, :]
    ys = (y0 + (np.arange(height, dtype=np.float32) + 0.5) / height * (y1 - y0))[None, :, None]
    field = np.zeros((len(v), height, width), dtype=np.float32)
    for i in range(3):
        fx = (1.0 + 2.5 * np.abs(v[:, 6 + i]))[:, None, None]
        fy = (1.0 + 2.5 * np.abs(v[:, 9 + i]))[:, None, None]
        phase = (v[:, 12 + i] * 3.0)[:, None, None]
        field += np.sin(2 * np.pi * (fx * xs + fy * ys) + phase)
    mask = _sigmoid(2.0 * field + v[:, 15][:, None, None])[..., None]
    c1 = (255 * _sigmoid(v[:, 0:3]))[:, None, None, :]
    c2 = (255 * _sigmoid(v[:, 3:6]))[:, None, None, :]
    out = c1 * mask + c2 * (1.0 - mask)
    return np.clip(out, 0, 255).astype(np.uint8)


def full_size(aspect: float) -> tuple[int, int]:
    """The nominal full size (what info.json reports) of a generated picture."""
    if aspect >= 1:
        return BASE_WIDTH, max(1, round(BASE_WIDTH / aspect))
    return max(1, round(BASE_WIDTH * aspect)), BASE_WIDTH


def average_colors(vectors: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Mean RGB of a 24x24 rendering of each picture.

    The palette inferrer averages a 50x50 downsample; the pictures are smooth, so 24x24
    gives the same colour to within a unit or two at a quarter of the cost.
    """
    out = np.zeros((len(vectors), 3), dtype=np.uint8)
    for start in range(0, len(vectors), chunk):
        pics = render_batch(vectors[start : start + chunk], 24, 24)
        out[start : start + chunk] = np.round(pics.reshape(len(pics), -1, 3).mean(axis=1))
    return out


ADJECTIVES = (
    "anatomical",
    "botanical",
    "coloured",
    "engraved",
    "gilded",
    "hand-drawn",
    "lithographed",
    "medical",
    "ornamental",
    "pharmaceutical",
    "surgical",
    "zoological",
    "allegorical",
    "architectural",
    "satirical",
    "devotional",
)
NOUNS = (
    "plate",
    "study",
    "portrait",
    "diagram",
    "specimen",
    "landscape",
    "instrument",
    "herbal",
    "procession",
    "skeleton",
    "garden",
    "apothecary",
    "hospital",
    "vessel",
    "map",
    "caricature",
)
FIRST = (
    "Anna",
    "Bartholomew",
    "Clara",
    "Daniel",
    "Eliza",
    "Francis",
    "Grace",
    "Henry",
    "Isabel",
    "John",
    "Katherine",
    "Louis",
    "Margaret",
    "Nathaniel",
    "Olive",
    "Peter",
)
LAST = (
    "Abbott",
    "Baker",
    "Cruikshank",
    "Dürer",
    "Ellis",
    "Fuseli",
    "Gillray",
    "Hogarth",
    "Ibbetson",
    "Jenner",
    "Kauffman",
    "Lister",
    "Morland",
    "Nash",
    "Orme",
    "Pether",
    "Rowlandson",
    "Sowerby",
    "Turner",
    "Vesalius",
)
GENRES = (
    "Etchings",
    "Engravings",
    "Lithographs",
    "Watercolours",
    "Photographs",
    "Drawings",
    "Woodcuts",
    "Mezzotints",
    "Oil paintings",
    "Posters",
)
SUBJECTS = (
    "Anatomy",
    "Botany",
    "Surgery",
    "Pharmacy",
    "Hospitals",
    "Medicine",
    "Zoology",
    "Skeletons",
    "Herbals",
    "Caricatures",
    "Portraits",
    "Diseases",
    "Public health",
    "Dentistry",
    "Midwifery",
    "Plants",
)
LICENSES = ("pdm", "cc-by", "cc-by-nc", "cc-0", "inc")


def _pick(seq: tuple[str, ...], *key: object) -> str:
    """A stable pseudo-random item of ``seq`` for ``key``."""
    digest = hashlib.blake2b("\x1f".join(map(str, key)).encode(), digest_size=8).digest()
    return seq[int.from_bytes(digest, "big") % len(seq)]


@lru_cache(maxsize=65536)
def _work_parts(seed: int, work: int) -> dict:
    """Everything shared by the images of one generated source work (cached: ~3 per work)."""
    work_key = f"scale-{seed}-{work}"
    title = (
        f"{_pick(ADJECTIVES, work_key, 'a').capitalize()} "
        f"{_pick(NOUNS, work_key, 'n')} no. {work + 1}"
    )
    artist = f"{_pick(FIRST, work_key, 'f')} {_pick(LAST, work_key, 'l')}"
    genre = _pick(GENRES, work_key, "g")
    subject = _pick(SUBJECTS, work_key, "s")
    return {
        "source_id": shapes.canonical_id("work", work_key),
        "title": title,
        "contributor": shapes.contributor(artist, "artist"),
        "genre": shapes.concept_list("Genre", genre, shapes.canonical_id("genre", genre)),
        "subject": shapes.concept_list("Subject", subject, shapes.canonical_id("subject", subject)),
    }


def record(image_id: str, proc: dict[str, np.ndarray], row: int) -> dict:
    """The stored-record equivalent (display + index fields) of one generated image."""
    parts = _work_parts(int(proc["seed"]), int(proc["work"][row]))
    r, g, b = (int(c) for c in proc["color"][row])
    display = shapes.image_display(
        image_id=image_id,
        asset_id=shapes.asset_id_for(image_id),
        aspect=round(float(proc["aspect"][row]), 7),
        average_color=f"#{r:02x}{g:02x}{b:02x}",
        source_id=parts["source_id"],
        title=parts["title"],
        license_id=LICENSES[int(proc["license"][row])],
        credit="Lookalike synthetic collection",
        contributors=[parts["contributor"]],
        genres=[parts["genre"]],
        subjects=[parts["subject"]],
        languages=[],
    )
    year = int(proc["year"][row])
    dates = [shapes.year_to_epoch_ms(year)] if year else []
    return {
        "id": image_id,
        "display": display,
        **shapes.index_fields(display, dates),
        "asset": shapes.asset_id_for(image_id),
        "file": None,
    }
