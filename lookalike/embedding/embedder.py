"""Run the converted model: decoded pictures in, L2-normalised float32 vectors out.

One onnxruntime session per process, one intra-op thread: Celery's prefork workers already
use every core with one task each, and more threads per process would only fight them. A
session made before a fork is not safe to use in the child, so ``shared_embedder`` keys its
cache by process id and each worker process makes its own on first use. ``InferenceSession.run``
is thread-safe, so threads of one process may share an ``Embedder``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from lookalike.embedding import preprocess
from lookalike.embedding.model import (
    INSTALL_COMMAND,
    RECIPE,
    EmbeddingError,
    ModelInfo,
    Recipe,
    install_model,
    installed_path,
    model_info,
    recipe_of,
)
from lookalike.embedding.onnx_build import INPUT
from lookalike.settings import Settings

# Images per onnxruntime call. The first layers' activations take ~5 MB per image, and the
# session's memory arena keeps its peak for good: a long list in one call would pin GBs.
CHUNK = 8


def _session(model: bytes | Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning workers burn a core waiting for work that one thread never hands out.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for a bad file
        where = "the model bytes" if isinstance(model, bytes) else str(model)
        raise EmbeddingError(
            f"onnxruntime cannot load {where} ({exc}); rebuild it with `{INSTALL_COMMAND} --force`"
        ) from exc


def normalise(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (an all-zero row stays zero rather than becoming NaN)."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit: np.ndarray = (features / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


class Embedder:
    """Embeds decoded pictures (``lookalike.hashing.decode_image``'s) with one model."""

    def __init__(self, model: bytes | Path, info: ModelInfo, threads: int = 1) -> None:
        self.info = info
        self.recipe: Recipe = info.recipe
        self._session = _session(model, threads)

    @property
    def version(self) -> str:
        """Record this with every vector: vectors of different versions are not comparable."""
        return self.info.version

    @property
    def dim(self) -> int:
        return self.info.dim

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The model's pooled features, (n, dim) float32, before normalisation."""
        out = np.zeros((len(images), self.dim), np.float32)
        for start in range(0, len(images), CHUNK):
            out[start : start + CHUNK] = self._run(images[start : start + CHUNK])
        return out

    def _run(self, images: Sequence[Image.Image]) -> np.ndarray:
        r = self.recipe
        x = preprocess.batch(images, r.fit, r.size, mirrored=r.mirrored)
        out = self._session.run(None, {INPUT: x})[0]
        if r.mirrored:
            out = out.reshape(len(images), 2, -1).mean(axis=1)
        return np.asarray(out, dtype=np.float32)

    def embed_many(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Unit vectors, one row per picture: cosine similarity is their dot product."""
        return normalise(self.features(images))

    def embed(self, image: Image.Image) -> np.ndarray:
        """One picture's unit vector, shape (dim,)."""
        row: np.ndarray = self.embed_many([image])[0]
        return row


def load_embedder(settings: Settings, recipe: Recipe = RECIPE, convert: bool = True) -> Embedder:
    """The embedder of the installed model; converts it first when missing and ``convert``."""
    if not settings.embeddings:
        raise EmbeddingError("embeddings are turned off (LOOKALIKE_EMBEDDINGS=0)")
    info = model_info(recipe)
    path = installed_path(settings.model_dir, info)
    if not path.is_file():
        if not convert:
            raise EmbeddingError(
                f"the embedding model is not installed in {settings.model_dir}: "
                f"run `{INSTALL_COMMAND}`"
            )
        info, path, _ = install_model(settings.model_dir, recipe)
    return Embedder(path, info)


_shared: dict[tuple[int, Path, str], Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(settings: Settings) -> Embedder | None:
    """This process's embedder, made on first use; None when embeddings are turned off."""
    if not settings.embeddings:
        return None
    recipe = recipe_of(settings.embed_recipe)
    key = (os.getpid(), settings.model_dir, recipe.label())
    with _shared_lock:
        embedder = _shared.get(key)
        if embedder is None:
            # A fork's inherited entries belong to the parent's sessions: drop them.
            for stale in [k for k in _shared if k[0] != key[0]]:
                del _shared[stale]
            embedder = _shared[key] = load_embedder(settings, recipe)
        return embedder
