"""The report's content (services/api/report/view.py) and its page from the templates
(render.py), without a graph: hostile strings in every field come out as text."""

from __future__ import annotations

import dataclasses

from services.api.report import view
from services.api.report.render import render

from .report_page import HOSTILE_TITLES, assert_inert

EVIL, QUOTE, APOS, CLOSE = HOSTILE_TITLES


def _audit_rows() -> tuple[dict, list[dict], list[dict]]:
    info = {
        "model": EVIL,
        "edges": 10,
        "with_vectors": 8,
        "reciprocal": 2,
        "cos_raw": {"p10": 0.1, "p50": 0.5, "p90": 0.9},
        "unlisted": 1,
        "strong": 0.8,
    }
    weak = [
        {
            "source": "a1",
            "target": "b1",
            "rank": 3,
            "cos_raw": 0.12345,
            "cos_refined": None,
            "hash_distance": {"phash": 30},
            "colour_distance": 41.6,
            "reciprocal": False,
        },
        {"source": "a2", "target": "b2", "cos_raw": None},
    ]
    unlisted = [{"a": "a1", "b": "c1", "cos_raw": 0.91, "cos_refined": 0.95}]
    return info, weak, unlisted


def hostile_page() -> view.Page:
    titles = {"a1": EVIL, "b1": QUOTE, "c1": APOS, "g1": CLOSE}
    thumbs = {"a1": "data:image/jpeg;base64,AAAA", "b1": None}
    summary = {
        "nodes": 3,
        "edges": 2,
        "centrality": {"pagerank": [{"id": "a1", "value": 0.5}, {"id": "b1", "value": 0.25}]},
    }
    info, weak, unlisted = _audit_rows()
    weak = view.with_vectors(weak)
    groups = [{"dup_group": QUOTE, "size": 14, "members": [{"id": "g1", "title": CLOSE}]}]
    return view.Page(
        generated=EVIL,
        collection=view.collection_rows(
            {"images": 3, "hashed": 3, "hash_failed": 0, "edges": 2},
            [{"license": APOS, "images": 3}],
            QUOTE,
        ),
        crawl=view.crawl({"id": EVIL, "status": QUOTE, "seeds": [APOS, CLOSE]}, None),
        metrics=view.metrics(summary, EVIL, titles, "degree_histogram.png"),
        seed=QUOTE,
        neighborhood=view.Neighborhood(QUOTE, APOS, 3, 2, True, 1, "neighborhood.png"),
        dup_groups=view.dup_groups(groups, thumbs),
        audit=view.audit(info, weak, unlisted, titles, thumbs),
    )


def test_hostile_strings_in_every_field_come_out_as_text() -> None:
    page = render(hostile_page())
    text = assert_inert(page)
    for hostile in HOSTILE_TITLES:
        assert text.count(hostile) >= 2, hostile
    assert "49" not in text  # data is never evaluated as a template


def test_sections_say_what_is_missing() -> None:
    page = render(
        view.Page(
            generated="now",
            collection=view.collection_rows(
                {"images": 0, "hashed": 0, "hash_failed": 0, "edges": 0}, [], "bolt://g"
            ),
            crawl=view.crawl(None, "abc123"),
            metrics=view.metrics({"nodes": 0}, "the whole graph", {}, "h.png"),
            seed=None,
            neighborhood=None,
            dup_groups=[],
            audit=None,
        )
    )
    text = " ".join(assert_inert(page).split())
    assert "No record of crawl abc123 (crawl with lookalike crawl or POST /crawls)." in text
    assert text.count("No metrics: the graph is empty.") == 2
    assert "The graph is empty: nothing to draw." in text
    assert "No near-duplicate groups found" in text
    assert "No audit: no index generation with embeddings yet" in text
    assert "<tr><th>licences</th><td>—</td></tr>" in page
    assert "<img" not in page
    missing = render(dataclasses.replace(hostile_page(), neighborhood=None))
    assert f"No image {QUOTE} in the graph." in assert_inert(missing)


def test_the_audit_pairs_and_their_figures() -> None:
    info, weak, unlisted = _audit_rows()
    weak = view.with_vectors(weak)
    assert [e["source"] for e in weak] == ["a1"]
    assert view.audit_ids(weak, unlisted) == ["a1", "b1", "c1"]
    found = view.audit(info, weak, unlisted, {"a1": "x" * 100}, {"a1": "data:,"})
    assert ("embedding cosine p10 / p50 / p90", "0.100 / 0.500 / 0.900") in found.rows
    (pair,) = found.least_supported
    assert pair.left == view.Thumb("a1", "x" * view.CAPTION_TITLE_CHARS, "data:,")
    assert pair.right == view.Thumb("b1", "", None)
    assert pair.facts == [
        "rank 3",
        "cosine 0.123 (refined —)",
        "phash 30 bits",
        "colour ΔE 42",
        "one way",
    ]
    assert found.unlisted[0].facts == ["cosine 0.910", "(refined 0.950)"]


def test_groups_rankings_and_crawl_rows() -> None:
    members = [{"id": f"m{i:02d}", "title": None} for i in range(15)]
    (group,) = view.dup_groups([{"dup_group": 7, "size": 40, "members": members}], {})
    assert group.name == "7" and len(group.members) == view.GROUP_MEMBERS_SHOWN
    assert group.more == 40 - view.GROUP_MEMBERS_SHOWN
    summary = {
        "centrality": {
            "in_degree": [{"id": f"i{n:02d}", "value": 20 - n} for n in range(12)],
            "betweenness": [],
        }
    }
    (ranking,) = view.rankings(summary, {"i00": "t" * 90})
    assert ranking.label == "Listed as similar by"
    assert len(ranking.items) == view.RANKED_SHOWN
    assert ranking.items[0] == view.RankedItem("i00", "t" * view.RANKED_TITLE_CHARS, "20")
    record = {
        "id": "c1",
        "seeds": ["a", "b"],
        "created_at": 1_700_000_000_000,
        "counts": {"failed": {"not_found": 2, "bad_json": 1}},
    }
    rows = dict(view.crawl(record, None).rows or [])
    assert rows["seeds"] == "a, b" and rows["status"] == "—"
    assert rows["started"] == "2023-11-14 22:13:20 UTC" and rows["finished"] == "—"
    assert rows["failures"] == "bad_json: 1, not_found: 2"
