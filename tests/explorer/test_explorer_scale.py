"""The explorer on a large graph stays responsive because the API caps and pages: a
neighbourhood that reaches thousands of images is drawn with 150, a title word shared by
every image is listed 20 at a time. (How fast, at 100k images, is bench/bench_explorer.py's
question; tests assert no timings.)"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from services.indexer.service import Indexer, IndexerConfig
from tests.api.conftest import ApiServer, start_server
from tests.support import isolated_graph, own_state

from .conftest import open_page, screenshot_dir

pytestmark = pytest.mark.timeout(900)

IMAGES = 6000
CLUSTER = 60
SUBJECTS = ["a river", "the sea", "a harbour", "flowers", "a woman", "a horse", "ruins"]


def synthetic(seed: int = 17) -> tuple[list[dict], list[tuple[str, str, int]]]:
    """Clusters of CLUSTER images, each listing 4 of its own cluster and 1 anywhere."""
    rng = random.Random(seed)
    ids = [f"s{i:05d}" for i in range(IMAGES)]
    images = [
        {
            "id": i,
            "title": f"Study of {rng.choice(SUBJECTS)} {k}",
            "fetched_at": 1_700_000_000_000,
            "license": "pdm",
        }
        for k, i in enumerate(ids)
    ]
    edges = []
    for k, image in enumerate(ids):
        base = k - k % CLUSTER
        own = rng.sample([ids[base + j] for j in range(CLUSTER) if base + j != k], 4)
        for rank, target in enumerate([*own, rng.choice(ids)], start=1):
            if target != image:
                edges.append((image, target, rank))
    return images, edges


@pytest.fixture(scope="module")
def big_api(
    settings: Any, embedded: bool, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiServer, list[dict]]]:
    images, edges = synthetic()
    folder = tmp_path_factory.mktemp("scale")
    with isolated_graph(settings, embedded) as (local, store):
        local = own_state(local, folder / "state")  # its index is for its own server only
        store.upsert_images(images, batch=3000)
        store.upsert_edges(edges, seen=1, batch=5000)
        Indexer(store, IndexerConfig(index_dir=local.index_dir)).build_once("scale test")
        api = start_server(local, folder / "api.log")
        try:
            yield api, images
        finally:
            api.stop()


def test_large_neighbourhoods_are_capped_and_long_lists_paged(big_api, browser: Any) -> None:
    api, images = big_api
    page, rec = open_page(browser, api.url)
    page.goto(api.url + "/#/image/s00000/3")
    page.wait_for_selector("#graph-notice:not([hidden])")
    assert page.locator("#graph .node").count() == 150
    assert "150" in page.inner_text("#graph-notice")
    # Still answers: select another image, its panel follows.
    other = page.eval_on_selector_all("#graph .node", "els => els[7].dataset.id")
    page.click(f'#graph .node[data-id="{other}"]')
    page.wait_for_function(
        "t => document.querySelector('#panel h2')?.textContent === t",
        arg=next(i["title"] for i in images if i["id"] == other),
    )
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(screenshot_dir() / "explorer-scale.png"))

    # Every image's title has "study": 6,000 matches, 20 a page, "More" adds the next 20.
    expected = [
        i["id"]
        for i in sorted(images, key=lambda i: (len(set(i["title"].lower().split())), i["id"]))
    ]
    page.fill("#q", "stud")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#results .result').length === 20")
    assert "6,000 titles" in page.inner_text("#results-title")
    page.click("#results .more")
    page.wait_for_function("() => document.querySelectorAll('#results .result').length === 40")
    shown = page.eval_on_selector_all("#results .result", "els => els.map(e => e.dataset.id)")
    assert shown == expected[:40]
    assert rec.problems() == []
    page.context.close()
