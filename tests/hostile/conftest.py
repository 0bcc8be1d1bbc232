"""Fixtures for the hostile-input tests: a small replica collection and the hostile catalogue
in front of it; shared from the other test packages: real Celery workers (the crawler tests'
``workers``) and the API's graph of known data with real `lookalike serve` processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.replica.collection import Collection
from services.replica.scale import build_scale_collection
from services.replica.server import run_replica
from tests.api.conftest import api, collection, known_graph, servers  # noqa: F401
from tests.crawl.conftest import workers  # noqa: F401 - the fixture
from tests.hostile.hostile_catalogue import HostileCatalogue


@pytest.fixture(scope="session")
def small_collection(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    """A synthetic collection of 150 images (pictures drawn on request)."""
    path = build_scale_collection(tmp_path_factory.mktemp("hostile") / "scale150", 150, seed=11)
    return Collection.load(path)


@pytest.fixture
def hostile(small_collection: Collection) -> Iterator[HostileCatalogue]:
    with run_replica(small_collection) as replica:
        catalogue = HostileCatalogue(replica)
        try:
            yield catalogue
        finally:
            catalogue.close()
