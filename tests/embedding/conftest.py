from __future__ import annotations

import pytest

from lookalike.embedding.embedder import Embedder, load_embedder
from lookalike.settings import Settings, load_settings


@pytest.fixture(scope="session")
def model_settings() -> Settings:
    # The real model folder (the user's cache, LOOKALIKE_MODEL_DIR): set-up converted the
    # model there, and every test run reuses it; converted on the spot when missing.
    return load_settings(embeddings=True)


@pytest.fixture(scope="session")
def embedder(model_settings: Settings) -> Embedder:
    return load_embedder(model_settings)
