"""Fixtures for the replica tests: collections built once per session, served over real HTTP.

- ``replica_spec_dir``: the shared catalogue spec folder (tests skip when it is absent);
- ``demo_dir``: the demo collection (Met paintings + planted families), built once;
- ``docs_dir``: every catalogue test document, with their real 4096-d vectors;
- ``everything_dir``: only ``images.everything`` (what the catalogue's list tests index);
- ``scale_dir``: a 5,000-image synthetic collection;
- ``demo_replica`` / ``docs_replica``: a running server over those, one per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lookalike.settings import load_settings
from services.replica.builder import build_collection
from services.replica.collection import Collection
from services.replica.scale import build_scale_collection
from services.replica.server import ReplicaHandle, run_replica

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def replica_spec_dir() -> Path:
    spec = load_settings().catalogue_spec_dir
    if not spec.is_absolute():
        spec = (REPO / spec).resolve()
    if not (spec / "test_documents").is_dir():
        pytest.skip(f"catalogue spec folder {spec} is absent (set LOOKALIKE_CATALOGUE_SPEC_DIR)")
    return spec


@pytest.fixture(scope="session")
def replica_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replica")


@pytest.fixture(scope="session")
def demo_dir(demo_collection: Path) -> Path:
    """The session's shared demo collection (tests/conftest.py), built once for everyone."""
    return demo_collection


@pytest.fixture(scope="session")
def demo(demo_dir: Path) -> Collection:
    return Collection.load(demo_dir)


@pytest.fixture(scope="session")
def docs_dir(replica_tmp: Path, replica_spec_dir: Path) -> Path:
    files = sorted((replica_spec_dir / "test_documents").glob("*.json"))
    return build_collection(replica_tmp / "docs", test_documents=files, kind="test-documents")


@pytest.fixture(scope="session")
def everything_dir(replica_tmp: Path, replica_spec_dir: Path) -> Path:
    files = [replica_spec_dir / "test_documents" / "images.everything.json"]
    return build_collection(replica_tmp / "everything", test_documents=files, kind="test-documents")


@pytest.fixture(scope="session")
def scale_dir(replica_tmp: Path) -> Path:
    return build_scale_collection(replica_tmp / "scale5k", 5000, seed=3)


@pytest.fixture
def demo_replica(demo_dir: Path) -> Iterator[ReplicaHandle]:
    with run_replica(demo_dir) as rep:
        yield rep


@pytest.fixture
def docs_replica(docs_dir: Path) -> Iterator[ReplicaHandle]:
    with run_replica(docs_dir) as rep:
        yield rep
