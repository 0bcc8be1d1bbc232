"""Near-duplicate quality on labelled pictures: what ``lookalike evaluate`` and the quality
benchmark measure, through the same code the indexer runs.

Labels: a folder whose sub-folders are families (every picture in one sub-folder is a copy
of the others; a picture directly in the folder is a family of its own), or a truth file
(JSON ``{"families": [[file, file, ...], ...]}``, paths relative to the file; pictures in the
folder that no family lists are families of their own). With ``plant``, every edit of
``services/replica/variants.py`` is applied to each picture and joins its family, labelled
with the edit, so recall can be reported per edit.

Each picture is seen as the crawler sees a catalogue's picture: fitted into 400x400 and
encoded as JPEG (the replica's IIIF thumbnail), decoded, hashed by
``lookalike.hashing.hash_image`` and (given an embedder) embedded by ``lookalike.embedding``
(``examine_pictures``); its verification view (lookalike.localmatch) is made from that
thumbnail when a pair asks for it (``picture_views``), as the workers make it. Hashes,
vectors and views then go through the indexer's near-duplicate pipeline
(``duplicates.near_duplicates``: candidates by hash radius and embedding kNN, verification
with the embedding cosines and local evidence, groups) with the current settings, and the
answer is scored against the labels: precision over every pair claimed, recall of
original-edit pairs (per edit and per family), and the precision of ``dup_group`` taken as a
claim that all its members are copies of each other.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from lookalike import localmatch
from lookalike.hashing import HASH_KINDS, ImageDecodeError, decode_image, hash_image
from services.indexer.bits import parse_hex
from services.indexer.localpairs import LocalPairs, PairLocal, ViewSource
from services.indexer.table import HashTable

PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")
THUMBNAIL_SIDE = 400  # the crawler asks for full/!400,400/0/default.jpg
THUMBNAIL_QUALITY = 85  # what the replica's IIIF server encodes thumbnails with
ORIGINAL = "original"


class EvaluationError(ValueError):
    """Labels or pictures the evaluation cannot use; the message names the file."""


@dataclass(frozen=True)
class Labelled:
    """One picture to hash: its id, its family, and the edit that made it from the family's
    original (``original`` for pictures as found)."""

    id: str
    family: str
    edit: str
    load: Callable[[], Image.Image] = field(compare=False, repr=False)


def _open(path: Path) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        try:
            return decode_image(path.read_bytes())
        except (ImageDecodeError, OSError) as exc:
            raise EvaluationError(f"{path}: {exc}") from exc

    return load


def _pictures(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES
    )


def families_from_folder(folder: Path, truth: Path | None = None) -> dict[str, list[Path]]:
    """family name -> its pictures, from sub-folders or a truth file (see the module doc)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(f"{folder} is not a folder of pictures")
    families: dict[str, list[Path]] = {}
    listed: set[Path] = set()
    if truth is not None:
        try:
            raw = json.loads(Path(truth).read_text())
            groups = raw["families"]
            if not isinstance(groups, list):
                raise TypeError("'families' is not a list")
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EvaluationError(
                f'{truth}: expected JSON {{"families": [[file, ...], ...]}} ({exc})'
            ) from exc
        for n, members in enumerate(groups):
            paths = [(Path(truth).parent / str(m)).resolve() for m in members]
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise EvaluationError(f"{truth}: family {n} lists missing files {missing[:3]}")
            families[f"family-{n:04d}"] = paths
            listed.update(paths)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        members = _pictures(sub)
        if members:
            families[sub.name] = members
    for path in _pictures(folder):
        if path.resolve() not in listed:
            families.setdefault(path.stem, []).append(path)
    if not families:
        raise EvaluationError(f"{folder} holds no pictures ({', '.join(PICTURE_SUFFIXES)})")
    return families


def labelled_pictures(
    families: dict[str, list[Path]],
    plant: Sequence[str] = (),
) -> list[Labelled]:
    """Every picture of every family, plus (``plant``) each edit of each family's first
    picture."""
    from services.replica import variants

    out: list[Labelled] = []
    for family, paths in families.items():
        for k, path in enumerate(paths):
            out.append(
                Labelled(
                    f"{family}/{path.name}", family, ORIGINAL if k == 0 else "given", _open(path)
                )
            )
        for edit in plant:
            load = _open(paths[0])

            def edited(load: Callable[[], Image.Image] = load, edit: str = edit) -> Image.Image:
                with Image.open(io.BytesIO(variants.edited_bytes(load(), edit))) as im:
                    return im.convert("RGB")

            out.append(Labelled(f"{family}/{paths[0].stem}~{edit}", family, edit, edited))
    return out


def thumbnail(picture: Image.Image) -> Image.Image:
    """The picture as the crawler receives it: fitted into 400x400, JPEG, decoded."""
    small = picture.convert("RGB")
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=THUMBNAIL_QUALITY)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return im.convert("RGB")


# Pictures whose views and keypoints are kept between the pairs judged: the evaluation's
# pictures are decoded and edited again on a miss, which costs more than the indexer's reads.
EVALUATION_CACHE = 2048


def picture_views(items: Sequence[Labelled]) -> ViewSource:
    """Each picture's verification view, made when asked from the thumbnail the crawler
    receives (as the workers make it); None for an id that is not one of ``items``."""
    by_id = {item.id: item for item in items}

    def view_of(image_id: str) -> np.ndarray | None:
        item = by_id.get(image_id)
        return None if item is None else localmatch.view(thumbnail(item.load()))

    return view_of


def local_evidence(items: Sequence[Labelled]) -> PairLocal:
    """The local evidence of pairs of ``items`` (what ``score`` takes as ``local``)."""
    return PairLocal(picture_views(items), cached=EVALUATION_CACHE)


class Embeds(Protocol):
    """What the evaluation needs of an embedder (``lookalike.embedding``): unit vectors."""

    def embed_many(self, images: Sequence[Image.Image]) -> np.ndarray: ...


@dataclass(frozen=True)
class Examined:
    """What the crawl would know of the pictures: hashes, and vectors (rows in the table's
    order) when an embedder was given."""

    table: HashTable
    vectors: np.ndarray | None = None


EMBED_BATCH = 16  # thumbnails held at once for one embedding call


def examine_pictures(
    items: Iterable[Labelled],
    embedder: Embeds | None = None,
    progress: Callable[[int], Any] | None = None,
) -> Examined:
    """Hash (and with ``embedder``, embed) every picture's thumbnail, as the crawl does with
    the thumbnail it decodes: ids in the order given."""
    ids: list[str] = []
    values: dict[str, list[int]] = {k: [] for k in HASH_KINDS}
    info: list[float] = []
    colors: list[str] = []
    vectors: list[np.ndarray] = []
    waiting: list[Image.Image] = []

    def embed_waiting() -> None:
        if embedder is not None and waiting:
            vectors.append(np.asarray(embedder.embed_many(waiting), np.float32))
        if progress is not None and waiting:
            progress(len(waiting))
        waiting.clear()

    for item in items:
        small = thumbnail(item.load())
        hashes = hash_image(small)
        ids.append(item.id)
        for kind, value in hashes.as_dict().items():
            values[kind].append(parse_hex(kind, value))
        info.append(hashes.info)
        colors.append(hashes.color)
        waiting.append(small)
        if len(waiting) == EMBED_BATCH:
            embed_waiting()
    embed_waiting()
    table = HashTable.from_arrays(
        ids,
        {k: np.array(v, dtype=np.uint64) for k, v in values.items()},
        info=np.array(info, dtype=np.float32),
        color=colors,
    )
    if embedder is None:
        return Examined(table)
    return Examined(table, np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32))


def without_identical(
    items: Sequence[Labelled], seen: Examined
) -> tuple[list[Labelled], Examined, list[tuple[str, str]]]:
    """The pictures without families whose original has exactly the pixels of an earlier
    family's original: one picture labelled as two families (scikit-image's
    ``chessboard_RGB`` is its ``chessboard_GRAY`` in three equal channels; a package may ship
    one stamp under two names) would count every claimed copy between them as a false pair.
    Candidates are originals with equal hashes of every kind; their pixels decide.
    Returns the items and the table (and vectors) without the later family, and the pairs
    (family kept, family left out)."""
    table = seen.table
    row = {image: k for k, image in enumerate(table.ids.tolist())}
    originals = [i for i in items if i.edit == ORIGINAL]
    by_hashes: dict[tuple[int, ...], list[Labelled]] = {}
    for item in originals:
        by_hashes.setdefault(tuple(table.values[row[item.id]].tolist()), []).append(item)
    dropped: list[tuple[str, str]] = []
    for same_hashes in by_hashes.values():
        kept: list[tuple[Labelled, np.ndarray]] = []
        for item in sorted(same_hashes, key=lambda i: i.family):
            pixels = np.asarray(item.load().convert("RGB"))
            twin = next((k for k, p in kept if np.array_equal(p, pixels)), None)
            if twin is None:
                kept.append((item, pixels))
            else:
                dropped.append((twin.family, item.family))
    if not dropped:
        return list(items), seen, []
    gone = {family for _, family in dropped}
    items = [i for i in items if i.family not in gone]
    return items, subset(items, seen), dropped


def subset(items: Sequence[Labelled], seen: Examined) -> Examined:
    """The table (and vectors) of ``items`` only, in their order."""
    table = seen.table
    row = {image: k for k, image in enumerate(table.ids.tolist())}
    keep = np.array([row[i.id] for i in items], dtype=np.int64)
    assert table.info is not None and table.color is not None
    table = HashTable(
        table.ids[keep],
        table.kinds,
        table.values[keep],
        table.present[keep],
        table.hashed_at[keep],
        info=table.info[keep],
        color=table.color[keep],
    )
    vectors = None if seen.vectors is None else seen.vectors[keep]
    return Examined(table, vectors)


@dataclass
class Scores:
    """How the near-duplicate pipeline did on labelled pictures."""

    images: int
    families: int
    candidates: int
    claimed: int  # verified pairs
    false_pairs: list[tuple[str, str]]
    precision: float
    recall_by_edit: dict[str, tuple[int, int]]  # edit -> (found, of) original-edit pairs
    # the same over families whose original has enough detail to be compared by hashes
    informative_by_edit: dict[str, tuple[int, int]]
    recall_by_family: dict[str, tuple[int, int]]  # family -> (found, of) of its pairs
    group_pairs: int  # pairs of images sharing a dup_group
    group_false: int
    group_precision: float
    low_information: list[str] = field(default_factory=list)  # families below the guard

    def recall(self, edit: str | None = None) -> float:
        found, total = (
            self.recall_by_edit.get(edit, (0, 0))
            if edit is not None
            else tuple(sum(x) for x in zip(*self.recall_by_edit.values(), strict=True))
            if self.recall_by_edit
            else (0, 0)
        )
        return found / total if total else float("nan")

    def as_json(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "families": self.families,
            "candidates": self.candidates,
            "claimed_pairs": self.claimed,
            "false_pairs": len(self.false_pairs),
            "precision": self.precision,
            "recall": self.recall(),
            "recall_by_edit": {
                e: {"found": f, "of": n, "recall": f / n if n else None}
                for e, (f, n) in self.recall_by_edit.items()
            },
            "informative_recall_by_edit": {
                e: {"found": f, "of": n, "recall": f / n if n else None}
                for e, (f, n) in self.informative_by_edit.items()
            },
            "group_pairs": self.group_pairs,
            "group_false_pairs": self.group_false,
            "group_precision": self.group_precision,
            "low_information_families": self.low_information,
            "false_pair_examples": [list(p) for p in self.false_pairs[:20]],
        }


def score(
    items: Sequence[Labelled],
    table: HashTable,
    radii: dict[str, int] | None = None,
    config: Any = None,
    vectors: np.ndarray | None = None,
    knn: int = 0,
    local: LocalPairs | None = None,
) -> Scores:
    """Run the indexer's pipeline (duplicates.near_duplicates) on the hashed pictures and
    score it against the labels. ``vectors`` (rows in the table's order): the pictures'
    embeddings, whose cosines verification weighs; ``knn``: candidates by embedding too;
    ``local``: the pictures' local evidence (``local_evidence``)."""
    from services.indexer.duplicates import near_duplicates
    from services.indexer.verify import CANDIDATE_RADII, VerifyConfig

    config = config or VerifyConfig()
    candidates, pairs, groups = near_duplicates(
        table, radii or CANDIDATE_RADII, config, vectors, knn, local
    )
    family = {item.id: item.family for item in items}
    edit = {item.id: item.edit for item in items}
    claimed = {(p.a, p.b) for p in pairs}
    false_pairs = sorted(k for k in claimed if family[k[0]] != family[k[1]])
    tp = len(claimed) - len(false_pairs)

    members: dict[str, list[str]] = {}
    for item in items:
        members.setdefault(item.family, []).append(item.id)
    assert table.info is not None
    info = dict(zip(table.ids.tolist(), table.info.tolist(), strict=True))
    low = sorted(
        {
            item.family
            for item in items
            if item.edit == ORIGINAL and info.get(item.id, math.inf) < config.min_information
        }
    )
    by_edit: dict[str, list[int]] = {}
    informative: dict[str, list[int]] = {}
    by_family: dict[str, list[int]] = {}
    for fam, ids in members.items():
        originals = [i for i in ids if edit[i] == ORIGINAL]
        counts = by_family.setdefault(fam, [0, 0])
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                a, b = sorted((ids[x], ids[y]))
                counts[0] += (a, b) in claimed
                counts[1] += 1
        for original in originals:
            for other in ids:
                if other == original or edit[other] == ORIGINAL:
                    continue
                a, b = sorted((original, other))
                for counts_of in (by_edit, informative) if fam not in low else (by_edit,):
                    c = counts_of.setdefault(edit[other], [0, 0])
                    c[0] += (a, b) in claimed
                    c[1] += 1

    group_pairs, group_false = grouped_pairs(groups, family)
    return Scores(
        images=len(items),
        families=len(members),
        candidates=len({(p.a, p.b) for p in candidates}),
        claimed=len(claimed),
        false_pairs=false_pairs,
        precision=tp / len(claimed) if claimed else 1.0,
        recall_by_edit={e: (c[0], c[1]) for e, c in sorted(by_edit.items())},
        informative_by_edit={e: (c[0], c[1]) for e, c in sorted(informative.items())},
        recall_by_family={f: (c[0], c[1]) for f, c in by_family.items() if c[1]},
        group_pairs=group_pairs,
        group_false=group_false,
        group_precision=(group_pairs - group_false) / group_pairs if group_pairs else 1.0,
        low_information=low,
    )


def grouped_pairs(groups: dict[str, tuple[str, int]], family: dict[str, str]) -> tuple[int, int]:
    """How many pairs of images share a dup_group (``duplicates.group_duplicates``'s
    answer), and how many of those join different families."""
    grouped: dict[str, list[str]] = {}
    for image, (group, _) in groups.items():
        grouped.setdefault(group, []).append(image)
    pairs = false = 0
    for ids in grouped.values():
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                pairs += 1
                false += family[ids[x]] != family[ids[y]]
    return pairs, false


def format_scores(scores: Scores, *, title: str = "", worst_families: int = 10) -> str:
    """The evaluation as a table a person reads."""
    from services.replica.variants import EDIT_DESCRIPTIONS

    lines = [title] if title else []
    lines.append(
        f"{scores.images} pictures in {scores.families} families; {scores.candidates} "
        f"candidate pairs, {scores.claimed} claimed near-duplicate pairs"
    )
    lines.append(
        f"pair precision {scores.precision:.4f} ({len(scores.false_pairs)} false); "
        f"dup_group precision {scores.group_precision:.4f} "
        f"({scores.group_false} false of {scores.group_pairs} pairs sharing a group)"
    )
    if scores.recall_by_edit:
        lines.append(f"{'edit':<12} {'recall':>7} {'found':>7}  {'informative':>11}  what")
        for e, (found, total) in scores.recall_by_edit.items():
            f2, n2 = scores.informative_by_edit.get(e, (0, 0))
            inf = f"{f2 / n2:.3f}" if n2 else "-"
            lines.append(
                f"{e:<12} {found / total:>7.3f} {found:>3}/{total:<3}  {inf:>11}  "
                f"{EDIT_DESCRIPTIONS.get(e, 'given in the folder')}"
            )
        lines.append(
            f"{'all':<12} {scores.recall():>7.3f}   (informative: over the families "
            "whose original has enough detail for hashes)"
        )
    weak = sorted(((f / n, fam, f, n) for fam, (f, n) in scores.recall_by_family.items() if f < n))
    if weak:
        lines.append(
            f"families with pairs missed ({len(weak)} of "
            f"{len(scores.recall_by_family)}), worst first:"
        )
        lines.extend(f"  {fam}: {f}/{n}" for _, fam, f, n in weak[:worst_families])
    if scores.low_information:
        lines.append(
            f"{len(scores.low_information)} families whose original has too little "
            "detail to be compared by hashes (claimed only on their pixels): "
            + ", ".join(scores.low_information[:8])
            + (" ..." if len(scores.low_information) > 8 else "")
        )
    if scores.false_pairs:
        lines.append(
            "false pairs (first 5): " + "; ".join(f"{a} ~ {b}" for a, b in scores.false_pairs[:5])
        )
    return "\n".join(lines)
