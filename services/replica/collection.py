"""A replica collection on disk, and the read API the server and the tests share.

Layout of a collection directory (``FORMAT`` 1)::

    manifest.json      kind, build key, counts (a rebuild with the same key is skipped)
    ids.txt            every image id, sorted (the API's default list order)
    records.jsonl      stored images: {id, display, filterable, aggregatable, query, asset, file}
    similar.npy        int32 (N, 5): rows of ids.txt, best first, -1 padding
    vectors/D.npy      float32 unit feature vectors of dimension D, and vectors/D.rows.npy
    palette.npy        float16 (n, 1000) palette embeddings, and palette.rows.npy
    procedural.npz     scale mode: per-image numbers its documents and pictures derive from
    images/            original picture files of built images, named by IIIF asset id
    ground_truth.json  planted near-duplicate families (when any)

Why precomputed similar lists: the crawl's expected result is a breadth-first walk over
them, so tests read ``Collection.similar_ids`` and compare; the server serves the same rows.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from services.replica import iiif, procedural, shapes
from services.replica.documents import with_base_url
from services.replica.similarity import N_SIMILAR, top_k

FORMAT = 1


class CollectionError(ValueError):
    """A collection directory is missing, incomplete or of another format."""


@dataclass
class CollectionData:
    """Everything a collection holds, in memory; what builders produce and ``save`` writes."""

    ids: list[str]
    records: dict[str, dict] = field(default_factory=dict)
    vectors: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    palettes: tuple[np.ndarray, np.ndarray] | None = None
    proc: dict[str, np.ndarray] | None = None
    similar: np.ndarray | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    ground_truth: dict | None = None

    def compute_similar(self) -> None:
        """Top-5 lists within each vector dimension (ES compares only same-dim vectors)."""
        sim = np.full((len(self.ids), N_SIMILAR), -1, dtype=np.int32)
        for rows, mat in self.vectors.values():
            if len(rows) == 0:
                continue
            local = top_k(mat)
            sim[rows] = np.where(local >= 0, rows[np.maximum(local, 0)], -1)
        self.similar = sim

    def save(self, out_dir: Path) -> None:
        """Write every file but ``images/`` (which builders fill) into ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "ids.txt").write_text("".join(f"{i}\n" for i in self.ids))
        with (out_dir / "records.jsonl").open("w") as f:
            for image_id in sorted(self.records):
                f.write(json.dumps(self.records[image_id], ensure_ascii=False) + "\n")
        if self.similar is None:
            self.compute_similar()
        np.save(out_dir / "similar.npy", self.similar)
        vec_dir = out_dir / "vectors"
        if vec_dir.exists():
            shutil.rmtree(vec_dir)
        vec_dir.mkdir()
        for dim, (rows, mat) in self.vectors.items():
            np.save(vec_dir / f"{dim}.npy", mat.astype(np.float32))
            np.save(vec_dir / f"{dim}.rows.npy", rows.astype(np.int32))
        if self.palettes is not None:
            np.save(out_dir / "palette.rows.npy", self.palettes[0].astype(np.int32))
            np.save(out_dir / "palette.npy", self.palettes[1].astype(np.float16))
        if self.proc is not None:
            np.savez(out_dir / "procedural.npz", **self.proc)
        if self.ground_truth is not None:
            (out_dir / "ground_truth.json").write_text(json.dumps(self.ground_truth, indent=1))
        manifest = {"format": FORMAT, **self.manifest, "count": len(self.ids)}
        # The manifest goes last: its presence marks a complete collection.
        (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))


class ImageSource:
    """A picture the IIIF server can cut and scale: a stored file or a generated one."""

    width: int
    height: int

    def render(self, box: tuple[int, int, int, int], out_size: tuple[int, int]) -> Image.Image:
        raise NotImplementedError


class FileImage(ImageSource):
    def __init__(self, path: Path, width: int, height: int) -> None:
        self.path, self.width, self.height = path, width, height

    def render(self, box: tuple[int, int, int, int], out_size: tuple[int, int]) -> Image.Image:
        picture = _open_picture(str(self.path))
        if box != (0, 0, self.width, self.height):
            picture = picture.crop(box)
        if picture.size != out_size:
            picture = picture.resize(out_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        return picture


@lru_cache(maxsize=64)
def _open_picture(path: str) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


class GeneratedImage(ImageSource):
    def __init__(self, vector: np.ndarray, width: int, height: int) -> None:
        self.vector, self.width, self.height = vector, width, height

    def render(self, box: tuple[int, int, int, int], out_size: tuple[int, int]) -> Image.Image:
        x0, y0, x1, y1 = box
        window = (x0 / self.width, y0 / self.height, x1 / self.width, y1 / self.height)
        pixels = procedural.render_batch(self.vector, out_size[0], out_size[1], window)[0]
        return Image.fromarray(pixels, "RGB")


class Collection:
    """Read access to a collection directory (see the module docstring for the layout)."""

    def __init__(self, path: Path, data: CollectionData) -> None:
        self.path = path
        self.manifest = data.manifest
        self.ids: list[str] = data.ids
        self._index = {image_id: i for i, image_id in enumerate(self.ids)}
        self._records = data.records
        self._similar = data.similar if data.similar is not None else np.zeros((0, N_SIMILAR))
        self._vectors = data.vectors
        self._vec_where: dict[int, tuple[int, int]] = {}
        for dim, (rows, _mat) in data.vectors.items():
            for r, row in enumerate(rows.tolist()):
                self._vec_where[row] = (dim, r)
        self._palette_rows: dict[int, int] = {}
        self._palettes = None
        if data.palettes is not None:
            self._palettes = data.palettes[1]
            self._palette_rows = {row: r for r, row in enumerate(data.palettes[0].tolist())}
        self._proc = data.proc
        self._proc_where: dict[int, int] = {}
        if data.proc is not None:
            self._proc_where = {row: r for r, row in enumerate(data.proc["rows"].tolist())}
        self._asset_to_id = {
            rec["asset"]: image_id for image_id, rec in self._records.items() if rec.get("asset")
        }
        self.ground_truth = data.ground_truth

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike) -> Collection:
        root = Path(path)
        manifest_file = root / "manifest.json"
        if not manifest_file.exists():
            raise CollectionError(
                f"{root} is not a replica collection (no manifest.json); "
                "build one with `lookalike replica build`"
            )
        manifest = json.loads(manifest_file.read_text())
        if manifest.get("format") != FORMAT:
            raise CollectionError(
                f"{root} has collection format {manifest.get('format')!r}, expected {FORMAT}; "
                "rebuild it"
            )
        ids = (root / "ids.txt").read_text().split()
        records: dict[str, dict] = {}
        with (root / "records.jsonl").open() as f:
            for line in f:
                if line.strip():
                    rec = json.loads(line)
                    records[rec["id"]] = rec
        vectors = {}
        vec_dir = root / "vectors"
        for file in sorted(vec_dir.glob("*.rows.npy")):
            dim = int(file.name.split(".")[0])
            vectors[dim] = (np.load(file), np.load(vec_dir / f"{dim}.npy"))
        palettes = None
        if (root / "palette.npy").exists():
            palettes = (np.load(root / "palette.rows.npy"), np.load(root / "palette.npy"))
        proc = None
        if (root / "procedural.npz").exists():
            with np.load(root / "procedural.npz") as z:
                proc = {k: z[k] for k in z.files}
        ground_truth = None
        if (root / "ground_truth.json").exists():
            ground_truth = json.loads((root / "ground_truth.json").read_text())
        data = CollectionData(
            ids=ids,
            records=records,
            vectors=vectors,
            palettes=palettes,
            proc=proc,
            similar=np.load(root / "similar.npy"),
            manifest=manifest,
            ground_truth=ground_truth,
        )
        return cls(root, data)

    # -- images ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._index

    def index_of(self, image_id: str) -> int:
        return self._index[image_id]

    def record(self, image_id: str) -> dict:
        """The stored record: display plus the index fields (generated in scale mode)."""
        rec = self._records.get(image_id)
        if rec is not None:
            return rec
        row = self._proc_where.get(self._index[image_id])
        if row is None:
            raise KeyError(image_id)
        return procedural.record(image_id, self._proc, row)

    def document(self, image_id: str, base_url: str | None = None) -> dict:
        """The Image display JSON (all source fields), URLs rebased onto ``base_url``."""
        display = self.record(image_id)["display"]
        return with_base_url(display, base_url) if base_url else json.loads(json.dumps(display))

    def similar_ids(self, image_id: str) -> list[str]:
        """The ordered (at most 5) similar ids ``withSimilarFeatures`` serves, without faults."""
        row = self._similar[self._index[image_id]]
        return [self.ids[j] for j in row.tolist() if j >= 0]

    def similar_map(self) -> dict[str, list[str]]:
        return {image_id: self.similar_ids(image_id) for image_id in self.ids}

    def vector(self, image_id: str) -> np.ndarray | None:
        where = self._vec_where.get(self._index[image_id])
        if where is None:
            return None
        dim, r = where
        return self._vectors[dim][1][r]

    def palette(self, image_id: str) -> np.ndarray | None:
        r = self._palette_rows.get(self._index[image_id])
        return None if r is None else self._palettes[r].astype(np.float32)

    def palette_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows into ids, float32 (n, 1000)) for every image with a palette embedding."""
        if self._palettes is None:
            return np.zeros(0, np.int32), np.zeros((0, 1000), np.float32)
        rows = np.fromiter(self._palette_rows.keys(), dtype=np.int64)
        return rows, self._palettes[list(self._palette_rows.values())].astype(np.float32)

    def procedural_arrays(self) -> dict[str, np.ndarray] | None:
        return self._proc

    # -- pictures --------------------------------------------------------------------------

    def asset_id(self, image_id: str) -> str | None:
        """The IIIF asset id the replica serves for an image (None: its URL is external)."""
        rec = self._records.get(image_id)
        if rec is not None:
            return rec.get("asset")
        return shapes.asset_id_for(image_id) if image_id in self else None

    def image_for_asset(self, asset_id: str) -> str | None:
        image_id = self._asset_to_id.get(asset_id)
        if image_id is not None:
            return image_id
        if self._proc is not None and asset_id.startswith("L"):
            candidate = asset_id[1:].lower()
            if (
                candidate.upper() == asset_id[1:]
                and self._proc_where.get(self._index.get(candidate, -1)) is not None
            ):
                return candidate
        return None

    def image_source(self, asset_id: str) -> ImageSource | None:
        image_id = self.image_for_asset(asset_id)
        if image_id is None:
            return None
        rec = self._records.get(image_id)
        if rec is not None:
            return FileImage(self.path / rec["file"], rec["width"], rec["height"])
        row = self._proc_where[self._index[image_id]]
        width, height = procedural.full_size(float(self._proc["aspect"][row]))
        return GeneratedImage(self.vector(image_id), width, height)

    def thumbnail_bytes(self, asset_id: str, size: str = "!400,400", fmt: str = "jpg") -> bytes:
        """The bytes ``/image/{asset}/full/{size}/0/default.{fmt}`` serves (without faults)."""
        source = self.image_source(asset_id)
        if source is None:
            raise KeyError(asset_id)
        request = iiif.parse_image_request("full", size, "0", f"default.{fmt}", source)
        return iiif.render(source, request)

    def thumbnail_image(self, image_id: str, size: str = "!400,400") -> Image.Image:
        asset = self.asset_id(image_id)
        if asset is None:
            raise KeyError(f"{image_id} has no replica-served picture")
        return Image.open(io.BytesIO(self.thumbnail_bytes(asset, size)))

    # -- walks and changes ----------------------------------------------------------------

    def bfs(
        self, seeds: Iterable[str], max_depth: int, *, unexpanded: Iterable[str] = ()
    ) -> dict[str, int]:
        """Depth of every image a breadth-first walk over the similar lists reaches.

        ``unexpanded`` ids are reached (listed by a neighbour) but never expanded, e.g.
        images whose own request permanently fails under a fault plan.
        """
        stop = set(unexpanded)
        depth: dict[str, int] = {}
        queue: deque[str] = deque()
        for seed in seeds:
            if seed not in depth:
                depth[seed] = 0
                queue.append(seed)
        while queue:
            current = queue.popleft()
            if depth[current] >= max_depth or current in stop or current not in self:
                continue
            for nxt in self.similar_ids(current):
                if nxt not in depth:
                    depth[nxt] = depth[current] + 1
                    queue.append(nxt)
        return depth

    def with_changes(
        self,
        out_dir: str | os.PathLike | None = None,
        *,
        similar: Mapping[str, list[str]] | None = None,
        remove: Iterable[str] = (),
    ) -> Collection:
        """A changed copy of the collection, saved to ``out_dir`` (default: in place).

        ``remove`` deletes images; every list that named a removed image is recomputed from
        the vectors of the images that remain (the catalogue's kNN would now find the next
        nearest). ``similar`` then overrides chosen lists outright (ids must exist, at most 5).
        """
        removed = set(remove)
        unknown = sorted(i for i in removed | set(similar or {}) if i not in self)
        if unknown:
            raise CollectionError(f"unknown image ids: {', '.join(unknown)}")
        for image_id, ids in (similar or {}).items():
            bad = [i for i in ids if i not in self or i in removed]
            if bad or len(ids) > N_SIMILAR or image_id in ids:
                raise CollectionError(
                    f"similar list for {image_id} must be at most {N_SIMILAR} other existing "
                    f"ids; bad: {bad or ids}"
                )
        target = Path(out_dir) if out_dir is not None else self.path
        keep = [i for i in self.ids if i not in removed]
        new_index = {image_id: n for n, image_id in enumerate(keep)}
        old_rows = np.array([self._index[i] for i in keep], dtype=np.int64)

        def remap(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            mask = np.isin(rows, old_rows)
            lookup = {self._index[i]: n for i, n in new_index.items()}
            return mask, np.array([lookup[r] for r in rows[mask].tolist()], dtype=np.int32)

        vectors = {}
        for dim, (rows, mat) in self._vectors.items():
            mask, new_rows = remap(rows)
            vectors[dim] = (new_rows, mat[mask])
        palettes = None
        if self._palettes is not None:
            rows = np.fromiter(self._palette_rows.keys(), dtype=np.int64)
            mask, new_rows = remap(rows)
            palettes = (new_rows, self._palettes[list(self._palette_rows.values())][mask])
        proc = None
        if self._proc is not None:
            mask, new_rows = remap(self._proc["rows"])
            proc = {
                k: (v[mask] if k != "rows" and v.ndim and len(v) == len(mask) else v)
                for k, v in self._proc.items()
            }
            proc["rows"] = new_rows
        lists = {i: self.similar_ids(i) for i in keep}
        stale = [i for i in keep if removed.intersection(lists[i])]
        data = CollectionData(
            ids=keep,
            records={i: r for i, r in self._records.items() if i not in removed},
            vectors=vectors,
            palettes=palettes,
            proc=proc,
            manifest={
                **self.manifest,
                "changed_from": str(self.path),
                # A fresh key: a later build into this directory must not be skipped.
                "build_key": "changed-"
                + hashlib.sha256(
                    repr(
                        (
                            self.manifest.get("build_key"),
                            sorted(removed),
                            sorted((similar or {}).items()),
                        )
                    ).encode()
                ).hexdigest()[:16],
            },
            ground_truth=self.ground_truth,
        )
        sim = np.full((len(keep), N_SIMILAR), -1, dtype=np.int32)
        for i in keep:
            sim[new_index[i], : len(lists[i])] = [new_index.get(j, -1) for j in lists[i]]
        for rows, mat in vectors.values():
            pos = {int(r): n for n, r in enumerate(rows.tolist())}
            todo = [pos[new_index[i]] for i in stale if new_index[i] in pos]
            if todo:
                fresh = top_k(mat, rows=np.array(todo))
                for local, best in zip(todo, fresh, strict=True):
                    sim[rows[local]] = np.where(best >= 0, rows[np.maximum(best, 0)], -1)
        for image_id, ids in (similar or {}).items():
            sim[new_index[image_id]] = -1
            sim[new_index[image_id], : len(ids)] = [new_index[j] for j in ids]
        data.similar = sim
        _write_with_images(self, data, target, removed)
        return Collection.load(target)


def _write_with_images(source: Collection, data: CollectionData, target: Path, removed: set[str]):
    """Save ``data`` to ``target``, carrying over the picture files of kept images."""
    if target.resolve() == source.path.resolve():
        data.save(target)
        for image_id in removed:
            rec = source._records.get(image_id)
            if rec and rec.get("file"):
                (source.path / rec["file"]).unlink(missing_ok=True)
        return
    if target.exists() and any(target.iterdir()):
        raise CollectionError(f"{target} exists and is not empty")
    tmp = Path(tempfile.mkdtemp(prefix=".replica-", dir=target.parent))
    try:
        (tmp / "images").mkdir()
        for rec in data.records.values():
            if rec.get("file"):
                src = source.path / rec["file"]
                dst = tmp / rec["file"]
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy2(src, dst)
        data.save(tmp)
        if target.exists():
            target.rmdir()
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
