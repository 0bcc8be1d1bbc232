"""``GET /catalogue/v2/images``: paging, links, filters, search, colour, sort, aggregations."""

from __future__ import annotations

import math

import requests

from services.replica.collection import Collection


def _get(rep, **params) -> dict:
    resp = requests.get(f"{rep.catalogue_url}/images", params=params, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_following_next_links_walks_every_image_in_id_order(demo_replica) -> None:
    coll: Collection = demo_replica.collection
    seen, pages = [], 0
    url = f"{demo_replica.catalogue_url}/images?pageSize=100"
    prev_links = []
    while url:
        body = requests.get(url, timeout=30).json()
        pages += 1
        assert body["type"] == "ResultList" and body["pageSize"] == 100
        assert body["totalResults"] == len(coll)
        assert body["totalPages"] == math.ceil(len(coll) / 100)
        seen += [r["id"] for r in body["results"]]
        prev_links.append(body.get("prevPage"))
        url = body.get("nextPage")
        assert url is None or url.startswith(demo_replica.catalogue_url + "/images?")
    assert seen == coll.ids
    assert pages == math.ceil(len(coll) / 100)
    assert prev_links[0] is None and prev_links[1].endswith("pageSize=100&page=1")
    # List results are the stored documents, trimmed, on the replica's own image host.
    first = coll.document(coll.ids[0], demo_replica.base_url)
    for key in ("contributors", "genres", "languages", "subjects"):
        first["source"].pop(key)
    assert _get(demo_replica, pageSize=1)["results"][0] == first


def test_page_link_format_and_out_of_range_pages(docs_replica) -> None:
    body = _get(docs_replica, page=1, pageSize=2)
    assert body["nextPage"] == f"{docs_replica.catalogue_url}/images?page=2&pageSize=2"
    assert "prevPage" not in body
    last = _get(docs_replica, page=27, pageSize=2)
    assert "nextPage" not in last and last["prevPage"].endswith("page=26&pageSize=2")
    beyond = _get(docs_replica, page=50, pageSize=2)
    assert beyond["results"] == [] and "nextPage" not in beyond and "prevPage" not in beyond


def test_empty_result_shape(docs_replica) -> None:
    assert _get(docs_replica, **{"locations.license": "no-such-licence"}) == {
        "type": "ResultList",
        "pageSize": 10,
        "totalPages": 0,
        "totalResults": 0,
        "results": [],
    }


def test_filters_or_within_and_across(docs_replica) -> None:
    coll: Collection = docs_replica.collection

    def ids_where(pred) -> list[str]:
        return [i for i in coll.ids if pred(coll.record(i)["filterable"])]

    pdm = _get(docs_replica, **{"locations.license": "pdm"}, pageSize=100)
    assert [r["id"] for r in pdm["results"]] == ids_where(
        lambda f: "pdm" in f["locations.license.id"]
    )
    either = _get(docs_replica, **{"locations.license": "pdm,inc"}, pageSize=100)
    assert either["totalResults"] == len(
        ids_where(lambda f: {"pdm", "inc"} & set(f["locations.license.id"]))
    )
    both = _get(
        docs_replica,
        **{"locations.license": "pdm,inc", "source.production.dates.from": "1900-01-01"},
        pageSize=100,
    )
    assert {r["id"] for r in both["results"]} == set(
        ids_where(
            lambda f: (
                {"pdm", "inc"} & set(f["locations.license.id"])
                and any(d >= -2208988800000 for d in f["source.production.dates.range.from"])
            )
        )
    )
    # Empty genre/subject id filters are no filter at all.
    assert _get(docs_replica, **{"source.genres": ""})["totalResults"] == len(coll)


def test_quoted_csv_labels(demo_replica) -> None:
    coll: Collection = demo_replica.collection
    labels = sorted(
        {
            a
            for i in coll.ids
            for a in coll.record(i)["filterable"]["source.contributors.agent.label"]
        }
    )
    two = labels[:2]
    body = _get(
        demo_replica,
        pageSize=100,
        **{"source.contributors.agent.label": ",".join(f'"{lab}"' for lab in two)},
    )
    expect = [
        i
        for i in coll.ids
        if set(two) & set(coll.record(i)["filterable"]["source.contributors.agent.label"])
    ]
    assert [r["id"] for r in body["results"]] == expect and expect


def test_date_sort_puts_undated_last(docs_replica) -> None:
    asc = [
        r["id"] for r in _get(docs_replica, sort="source.production.dates", pageSize=100)["results"]
    ]
    desc = [
        r["id"]
        for r in _get(docs_replica, sort="source.production.dates", sortOrder="desc", pageSize=100)[
            "results"
        ]
    ]
    coll = docs_replica.collection
    dated = [i for i in asc if coll.record(i)["filterable"]["source.production.dates.range.from"]]
    n = len(dated)
    assert n >= 10 and set(asc[:n]) == set(desc[:n]) == set(dated)

    def first_date(i: str) -> int:
        return min(coll.record(i)["filterable"]["source.production.dates.range.from"])

    assert [first_date(i) for i in asc[:n]] == sorted(first_date(i) for i in dated)
    assert [first_date(i) for i in desc[:n]] == sorted((first_date(i) for i in dated), reverse=True)
    # Undated images come last in both orders, in id order.
    assert asc[n:] == sorted(asc[n:]) and desc[n:] == asc[n:]
    assert asc[0] == "5rc8axpc"  # the image produced in 1098


def test_colour_ranks_by_palette(docs_replica) -> None:
    ranked = [r["id"] for r in _get(docs_replica, color="e02020")["results"]]
    red, slightly, even_less, blue = "vvrz7rp6", "gqu94wsn", "aseqb4qe", "df4wc7rk"
    assert ranked.index(red) < ranked.index(slightly) < ranked.index(even_less)
    assert blue not in ranked[:3]


def test_text_query_weights_titles(docs_replica) -> None:
    body = _get(docs_replica, query="bread")
    ids = [r["id"] for r in body["results"]]
    breads = {"trl6ofk9", "n0qiz9n6", "v6rc61ab", "a3axkdzo"}
    assert breads & set(ids)
    assert set(ids) <= breads | {
        i for i in ids if "bread" in str(docs_replica.collection.record(i)["query"]).lower()
    }
    # A source work id finds that work's images.
    work = docs_replica.collection.document("hqnskj6m")["source"]["id"]
    assert "hqnskj6m" in [r["id"] for r in _get(docs_replica, query=work)["results"]]


def test_aggregations_apply_every_other_filter(docs_replica) -> None:
    coll: Collection = docs_replica.collection
    body = _get(
        docs_replica,
        aggregations="locations.license,source.genres.label",
        **{"locations.license": "pdm"},
    )
    aggs = body["aggregations"]
    assert aggs["type"] == "Aggregations"
    # The licence aggregation ignores the licence filter (RFC 37) ...
    counts = {}
    for i in coll.ids:
        for lic in coll.record(i)["aggregatable"]["locations.license"]:
            counts[lic["id"]] = counts.get(lic["id"], 0) + 1
    got = {b["data"]["id"]: b["count"] for b in aggs["license"]["buckets"]}
    assert got == counts
    buckets = aggs["license"]["buckets"]
    assert [b["count"] for b in buckets] == sorted((b["count"] for b in buckets), reverse=True)
    assert all(b["type"] == "AggregationBucket" for b in buckets)
    # ... while the genre aggregation counts only pdm images; label buckets use id = label.
    for bucket in aggs["source.genres.label"]["buckets"]:
        assert bucket["data"]["id"] == bucket["data"]["label"]
    pdm_genres = sum(
        len(coll.record(i)["aggregatable"]["source.genres"])
        for i in coll.ids
        if "pdm" in coll.record(i)["filterable"]["locations.license.id"]
    )
    assert sum(b["count"] for b in aggs["source.genres.label"]["buckets"]) == pdm_genres


def test_scale_collection_lists_generated_documents(scale_dir) -> None:
    from services.replica.server import run_replica

    with run_replica(scale_dir) as rep:
        body = _get(rep, page=3, pageSize=100, include="source.subjects")
        coll = rep.collection
        assert [r["id"] for r in body["results"]] == coll.ids[200:300]
        assert body["totalResults"] == 5000 and body["totalPages"] == 50
        assert all(r["source"]["subjects"] for r in body["results"])
        pdm = _get(rep, **{"locations.license": "pdm"}, aggregations="locations.license")
        expected = sum(
            1 for i in coll.ids if coll.record(i)["filterable"]["locations.license.id"] == ["pdm"]
        )
        assert pdm["totalResults"] == expected and 1500 < expected < 3500
