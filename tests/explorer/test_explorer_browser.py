"""The explorer in a real browser, through the real stack: the graph the demo crawled (the
session's ``demo_run``), served by ``lookalike serve`` with a token, a Celery worker and the
catalogue replica for crawls started from the page.

One journey, as a person takes it: start page -> find by title words -> open -> change
depth -> expand in place -> keyboard -> path between two images -> drop a picture ->
start a crawl and watch it finish -> the analysis. Expectations come from the graph itself
(read through GraphStore and networkx), not from the API the page uses. Throughout: no
console errors or warnings, no request leaving the server's origin, alt text on every
thumbnail. Screenshots of each view go to ``build/screenshots`` (see conftest).
"""

from __future__ import annotations

import io
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import networkx as nx
import pytest
from PIL import Image

from lookalike.graph import GraphStore
from lookalike.settings import Settings, load_settings
from lookalike.thumbcache import ThumbnailCache
from lookalike.vectors import current_model
from services.replica.collection import Collection
from services.replica.server import run_replica
from tests.api.conftest import ApiServer, start_server, start_worker
from tests.conftest import DemoRun

from .conftest import drop_file, open_page, screenshot_dir

pytestmark = pytest.mark.timeout(900)

TOKEN = "explorer-test-token"
PANEL_LOOKALIKES = 8  # how many lookalikes the panel asks for (api.js)


@dataclass
class Stack:
    api: ApiServer
    settings: Settings
    graph: nx.Graph  # undirected SIMILAR_TO
    titles: dict[str, str]
    spare_seed: str  # a collection image for a crawl started from the page


@pytest.fixture(scope="module")
def stack(
    demo_run: DemoRun, demo_collection: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    local = load_settings(state_dir=demo_run.state)
    logs = tmp_path_factory.mktemp("explorer-logs")
    with GraphStore.connect(local) as store:
        everything = store.export_all()
    graph = nx.Graph()
    graph.add_nodes_from(everything.nodes)
    graph.add_edges_from((s, t) for s, t, _ in everything.edges)
    titles = {i: p.get("title") or "" for i, p in everything.nodes.items()}
    collection = Collection.load(demo_collection)
    with run_replica(collection) as replica:
        worker = start_worker(local, logs / "worker.log", **replica.env())
        api = start_server(local, logs / "api.log", LOOKALIKE_API_TOKEN=TOKEN)
        try:
            yield Stack(api, local, graph, titles, collection.ids[-1])
        finally:
            api.stop()
            worker.stop()


def folded_words(title: str) -> list[str]:
    text = unicodedata.normalize("NFKD", title.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.findall(r"[a-z0-9]+", text)


def ids_in(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.id)")


def node_positions(page: Any) -> dict[str, str]:
    return dict(
        page.eval_on_selector_all(
            "#graph .node", "els => els.map(e => [e.dataset.id, e.getAttribute('transform')])"
        )
    )


def shoot(page: Any, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.body.innerText.includes('Looking…')")
    page.wait_for_timeout(600)  # let new nodes finish fading in
    page.screenshot(path=str(screenshot_dir() / f"explorer-{name}.png"))


def check_alt_text(page: Any) -> None:
    missing = page.evaluate("""() => [
        ...[...document.images].filter(i => !i.alt.trim()).map(i => i.src),
        ...[...document.querySelectorAll('#graph .node')]
            .filter(n => !(n.querySelector('[role=img]')?.getAttribute('aria-label') || '')
                .trim()).map(n => n.dataset.id),
    ]""")
    assert missing == []


def check_lookalikes(page: Any, stack: Stack, image_id: str) -> None:
    """The panel's lookalikes are the image's best LOOKS_LIKE in the graph (the indexer's,
    by raw embedding cosine), best first, each with its cosine; without embeddings the
    panel has no lookalikes section."""
    section = "#panel section[aria-label=Lookalikes]"
    if current_model(stack.settings) is None:
        page.wait_for_selector(section, state="hidden")
        return
    with GraphStore.connect(stack.settings) as store:
        stored = store.read("looks_like_of", id=image_id, refined=False)
    assert stored, f"the demo wrote no LOOKS_LIKE for {image_id}"
    page.wait_for_selector(f"{section} .tile")
    shown = ids_in(page, f"{section} .tile")
    notes = page.eval_on_selector_all(
        f"{section} .tile .note", "els => els.map(e => e.textContent)"
    )
    score = {x["id"]: x["score"] for x in stored}
    top = min(PANEL_LOOKALIKES, len(stored))
    assert len(shown) >= top
    # Stored scores have 4 decimals, and near-ties at the border may fall either way: each
    # shown image scores at least the k-th best stored one, in order, with its cosine.
    close = 1e-3
    border = stored[top - 1]["score"] - close
    assert all(score.get(i, -1.0) >= border for i in shown[:top]), (shown, stored)
    assert all(score[a] >= score[b] - close for a, b in itertools.pairwise(shown[:top]))
    for i, note in zip(shown[:top], notes, strict=False):
        assert note.startswith("cosine ") and abs(float(note[7:]) - score[i]) <= 0.005 + close


def test_explorer_journey(stack: Stack, browser: Any) -> None:
    api, graph = stack.api, stack.graph
    page, rec = open_page(browser, api.url)

    # Start page: the most central images of the demo's whole-graph analysis.
    page.goto(api.url + "/")
    page.wait_for_selector("#home-start .tile")
    shoot(page, "start")
    central = ids_in(page, "#home-start .tile")[0]
    page.click(f'#home-start .tile[data-id="{central}"]')
    page.wait_for_function(
        "n => document.querySelectorAll('#graph .node').length === n",
        arg=min(150, len(nx.single_source_shortest_path_length(graph, central, cutoff=2))),
    )
    page.wait_for_selector("#panel h2")
    shoot(page, "graph")

    # Find by words of a title: a prefix of the commonest title word.
    counts = Counter(w for t in stack.titles.values() for w in set(folded_words(t)) if len(w) >= 5)
    word = next(w for w, n in counts.most_common() if n >= 2)
    prefix = word[:4]
    expected = sorted(
        (len(set(folded_words(t))), i)
        for i, t in stack.titles.items()
        if any(w.startswith(prefix) for w in folded_words(t))
    )
    page.fill("#q", prefix)
    page.press("#q", "Enter")
    page.wait_for_selector("#results .result")
    page.wait_for_function(
        "n => document.querySelectorAll('#results .result').length === n",
        arg=min(20, len(expected)),
    )
    assert ids_in(page, "#results .result") == [i for _, i in expected][:20]
    assert f"{len(expected)} title" in page.inner_text("#results-title")

    # Open the first result: its neighbourhood at depth 2, its panel.
    seed = expected[0][1]
    page.click(f'#results .result[data-id="{seed}"]')
    page.wait_for_url(re.compile(rf"#/image/{seed}/2$"))
    within2 = nx.single_source_shortest_path_length(graph, seed, cutoff=2)
    page.wait_for_function(
        "n => document.querySelectorAll('#graph .node').length === n", arg=min(150, len(within2))
    )
    assert set(ids_in(page, "#graph .node")) == set(within2)
    page.wait_for_selector("#panel h2")
    assert page.inner_text("#panel h2") == (stack.titles[seed] or "Untitled")
    check_lookalikes(page, stack, seed)
    check_alt_text(page)
    shoot(page, "found")

    # Depth 1, then expand a neighbour in place: the union of both 1-hop neighbourhoods,
    # and nothing already drawn moves.
    page.click("label:has(input[name=depth][value='1'])")
    page.wait_for_url(re.compile(rf"#/image/{seed}/1$"))
    ring = set(nx.single_source_shortest_path_length(graph, seed, cutoff=1))
    page.wait_for_function(
        "n => document.querySelectorAll('#graph .node').length === n", arg=len(ring)
    )
    neighbour = max(ring - {seed}, key=lambda n: len(set(graph[n]) - ring))
    union = ring | set(graph[neighbour])
    before = node_positions(page)
    page.click(f'#graph .node[data-id="{neighbour}"]')
    page.wait_for_function(
        "t => document.querySelector('#panel h2')?.textContent === t",
        arg=stack.titles[neighbour] or "Untitled",
    )
    page.click("#panel button:has-text('Expand')")
    page.wait_for_function(
        "n => document.querySelectorAll('#graph .node').length === n", arg=len(union)
    )
    assert set(ids_in(page, "#graph .node")) == union
    after = node_positions(page)
    assert {i: after[i] for i in before} == before
    shoot(page, "expanded")

    # Keyboard: arrows move between images, Enter selects one.
    page.focus(f'#graph .node[data-id="{seed}"]')
    for key in ("ArrowRight", "ArrowLeft", "ArrowDown", "ArrowUp"):
        page.keyboard.press(key)
        focused = page.evaluate("document.activeElement.dataset.id")
        if focused != seed:
            break
    assert focused in union and focused != seed
    page.keyboard.press("Enter")
    page.wait_for_function(
        "t => document.querySelector('#panel h2')?.textContent === t",
        arg=stack.titles[focused] or "Untitled",
    )

    # A path between two images at least two steps apart: from the panel, then the form.
    lengths = dict(nx.all_pairs_shortest_path_length(graph))
    source, target = max(
        ((a, b) for a in lengths for b in lengths[a]), key=lambda p: (lengths[p[0]][p[1]], p)
    )
    hops = lengths[source][target]
    assert hops >= 2
    page.fill("#q", source)
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(rf"#/image/{source}/1$"))
    page.wait_for_function(
        "t => document.querySelector('#panel h2')?.textContent === t",
        arg=stack.titles[source] or "Untitled",
    )
    page.click("#panel button:has-text('Path from here')")
    page.wait_for_selector("#view-path:not([hidden])")
    page.fill("#path-to", target)
    page.click("#path-form button[type=submit]")
    page.wait_for_function(
        "n => document.querySelectorAll('.chain .stop').length === n", arg=hops + 1
    )
    chain = ids_in(page, ".chain .stop")
    assert chain[0] == source and chain[-1] == target
    assert all(graph.has_edge(a, b) for a, b in itertools.pairwise(chain))
    assert page.locator(".chain .link").count() == hops
    check_alt_text(page)
    shoot(page, "path")

    # Drop a picture: a smaller, recompressed copy of a stored thumbnail finds its image first.
    cache = ThumbnailCache(stack.settings.thumbnail_dir, 10**9)
    with GraphStore.connect(stack.settings) as store:
        alone = sorted(
            i
            for i, p in store.get_images(sorted(graph)).items()
            if not p.get("dup_group") and cache.path(i)
        )
    pictured = alone[0]
    picture = Image.open(io.BytesIO(cache.get(pictured) or b"")).convert("RGB")
    picture = picture.resize((picture.width * 9 // 10, picture.height * 9 // 10))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=70)
    drop_file(page, "body", "my-picture.jpg", buffer.getvalue(), "image/jpeg")
    page.wait_for_selector("#results .result")
    assert ids_in(page, "#results .result")[0] == pictured
    assert page.is_visible("#results .dropped img")
    check_alt_text(page)
    shoot(page, "picture")

    # Crawls: the demo's is listed; start one (the server wants its token) and watch it end.
    page.click("nav a:has-text('Crawls')")
    page.wait_for_selector("#crawls-body tr.status-done")
    assert page.is_visible("#token-box")
    page.fill("#token", TOKEN)
    page.press("#token", "Tab")
    page.fill("#crawl-seeds", stack.spare_seed)
    page.fill("#crawl-depth", "1")
    page.click("#crawl-form button[type=submit]")
    page.wait_for_selector("#crawl-result:has-text('started')")
    crawl_id = re.search(r"Crawl (\w+) started", page.inner_text("#crawl-result")).group(1)
    page.wait_for_selector(f"#crawl-{crawl_id}")
    shoot(page, "crawls")
    # Live: the row changes to done without reloading the page.
    page.wait_for_selector(f"#crawl-{crawl_id}.status-done", timeout=180_000)

    # The analysis: figures, the degree histogram, communities and their members.
    page.click("nav a:has-text('Analysis')")
    page.wait_for_selector("#degree-histogram svg.histogram")
    jobs = api.get("/analysis/jobs").json()["jobs"]
    latest = max((j for j in jobs if j["status"] == "done"), key=lambda j: j["finished_at"])
    assert page.locator("#degree-histogram rect.bar").count() == len(
        latest["summary"]["degree_histogram"]
    )
    assert page.locator("#communities .chip").count() == len(
        latest["summary"]["communities"]["sizes"]
    )
    page.click("#communities .chip >> nth=0")
    page.wait_for_selector("#community-members .tile")
    shoot(page, "analysis")

    assert rec.problems() == []
    assert any(u.endswith("/search") for u in rec.requests)
    page.context.close()


def test_a_wrong_token_shows_the_apis_message(stack: Stack, browser: Any) -> None:
    """A wrong token: the API's own message is shown; the page stays usable."""
    page, rec = open_page(browser, stack.api.url)
    page.goto(stack.api.url + "/#/crawls")
    page.wait_for_selector("#crawls-body tr")
    page.fill("#token", "not-the-token")
    page.press("#token", "Tab")
    page.fill("#crawl-seeds", stack.spare_seed)
    page.click("#crawl-form button[type=submit]")
    page.wait_for_selector("#crawl-result .error")
    assert "token is not valid" in page.inner_text("#crawl-result")
    # The refused request is the only problem the page reports (the browser logs the 401).
    assert [p for p in rec.problems() if "401" not in p] == []
    page.context.close()
