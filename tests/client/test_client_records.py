"""Parsing catalogue JSON into records: real documents parse; bad fields are named exactly."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest

from lookalike.errors import CatalogueError, RecordError
from lookalike.records import (
    ImageRecord,
    parse_image,
    parse_image_with_similar,
    parse_result_page,
)
from tests.client.client_docs import image_doc


def test_real_snapshot_lines_parse(spec_dir: Path) -> None:
    lines = (spec_dir / "snapshot" / "expected-snapshot-images.txt").read_text().splitlines()
    records = [parse_image(json.loads(line)) for line in lines if line.strip()]
    assert len(records) == 5
    first = records[0]
    assert first == ImageRecord(
        id="rnhd2myb",
        title=json.loads(lines[0])["source"]["title"],
        source_id="mbszgbfz",
        thumbnail_url="https://iiif.wellcomecollection.org/image/L0014768/info.json",
        license="pdm",
        aspect_ratio=1.3651878,
        average_color="#989898",
    )
    assert first.as_node() == {
        "id": "rnhd2myb",
        "title": first.title,
        "source_id": "mbszgbfz",
        "thumbnail_url": "https://iiif.wellcomecollection.org/image/L0014768/info.json",
        "license": "pdm",
        "aspect_ratio": 1.3651878,
        "average_color": "#989898",
    }


def test_every_real_test_document_parses(spec_dir: Path) -> None:
    docs = sorted((spec_dir / "test_documents").glob("*.json"))
    assert len(docs) >= 50
    for path in docs:
        display = json.loads(path.read_text())["document"]["display"]
        record = parse_image(display)
        assert record.id == display["id"]
        # Synthetic fixtures use uppercase colours; the graph stores one spelling.
        assert record.average_color == display["averageColor"].lower()
    licences = {parse_image(json.loads(p.read_text())["document"]["display"]).license for p in docs}
    assert {"cc-by", "pdm", "inc"} <= licences


def test_similar_images_keep_rank_order() -> None:
    doc = image_doc(
        "aaaa1111", similar=[image_doc(i) for i in ("bbbb2222", "cccc3333", "dddd4444")]
    )
    result = parse_image_with_similar(doc, "withSimilarFeatures")
    assert result.image.id == "aaaa1111"
    assert [s.id for s in result.similar] == ["bbbb2222", "cccc3333", "dddd4444"]
    assert result.similar_field == "withSimilarFeatures"
    assert result.edges() == [
        {"source": "aaaa1111", "target": "bbbb2222", "rank": 1},
        {"source": "aaaa1111", "target": "cccc3333", "rank": 2},
        {"source": "aaaa1111", "target": "dddd4444", "rank": 3},
    ]


def test_legacy_field_and_empty_list() -> None:
    doc = image_doc("aaaa1111", similar=[image_doc("bbbb2222")], similar_field="visuallySimilar")
    assert [s.id for s in parse_image_with_similar(doc).similar] == ["bbbb2222"]
    assert parse_image_with_similar(image_doc("aaaa1111", similar=[])).similar == ()
    assert parse_image_with_similar(image_doc("aaaa1111")).similar_field == ""


def _break(doc: dict, path: list, value: object = KeyError) -> dict:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


SIMILAR = image_doc(
    "aaaa1111", similar=[image_doc(i) for i in ("bbbb2222", "cccc3333", "dddd4444")]
)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["withSimilarFeatures", 2, "thumbnail", "url"],
            KeyError,
            "withSimilarFeatures[2].thumbnail.url: missing",
        ),
        (
            ["withSimilarFeatures", 0, "id"],
            "BAD ID",
            "withSimilarFeatures[0].id: 'BAD ID' is not a catalogue id",
        ),
        (["withSimilarFeatures"], {"a": 1}, "withSimilarFeatures: expected a list, got an object"),
        (["withSimilarFeatures"], KeyError, "withSimilarFeatures: missing"),
        (["id"], 12, "id: expected a string, got a number"),
        (["thumbnail"], KeyError, "thumbnail: missing"),
        (["thumbnail", "url"], "ftp://x/info.json", "thumbnail.url: 'ftp://x/info.json' is not an"),
        (["thumbnail", "license"], {"label": "x"}, "thumbnail.license.id: missing"),
        (["source"], "work", "source: expected an object, got a string"),
        (["source", "id"], KeyError, "source.id: missing"),
        (["source", "title"], 5, "source.title: expected a string, got a number"),
        (["aspectRatio"], "1.3", "aspectRatio: expected a number, got a string"),
        (["aspectRatio"], True, "aspectRatio: expected a number, got a boolean"),
        (["aspectRatio"], 0, "aspectRatio: expected a positive number, got 0"),
        (["averageColor"], "red", "averageColor: expected '#rrggbb', got 'red'"),
        (["averageColor"], KeyError, "averageColor: missing"),
        (["type"], "Work", "type: expected 'Image', got 'Work'"),
    ],
)
def test_bad_fields_are_named(path: list, value: object, message: str) -> None:
    with pytest.raises(RecordError) as info:
        parse_image_with_similar(_break(SIMILAR, path, value), "withSimilarFeatures")
    assert str(info.value.message).startswith(message), info.value.message
    assert info.value.reason == "invalid_record"
    assert info.value.retryable is False


def test_null_title_and_missing_licence_are_allowed() -> None:
    doc = _break(_break(image_doc(), ["source", "title"], None), ["thumbnail", "license"])
    record = parse_image(doc)
    assert record.title is None
    assert record.license is None


def test_not_an_object() -> None:
    with pytest.raises(RecordError, match=r"\(document\): expected an object, got a list"):
        parse_image([1, 2])


def test_result_page_keeps_good_results_and_names_bad_ones() -> None:
    bad = _break(image_doc("bbbb2222"), ["averageColor"], "#12")
    page = {
        "type": "ResultList",
        "pageSize": 3,
        "totalPages": 4,
        "totalResults": 11,
        "results": [image_doc("aaaa1111"), bad, image_doc("cccc3333")],
        "nextPage": "https://api.wellcomecollection.org/catalogue/v2/images?pageSize=3&page=2",
    }
    parsed = parse_result_page(page)
    assert [r.id for r in parsed.records] == ["aaaa1111", "cccc3333"]
    assert [e.message for e in parsed.errors] == [
        "results[1].averageColor: expected '#rrggbb', got '#12'"
    ]
    assert (parsed.total_results, parsed.total_pages, parsed.next_page) == (11, 4, 2)
    del page["nextPage"]
    assert parse_result_page(page).next_page is None
    with pytest.raises(RecordError, match="totalResults: missing"):
        parse_result_page({"type": "ResultList", "results": [], "totalPages": 0})


def test_errors_survive_pickling() -> None:
    """Celery and multiprocessing pickle exceptions; the reason and field must survive."""
    err = RecordError("thumbnail.url", "missing", url="http://x/images/a")
    copy_ = pickle.loads(pickle.dumps(err))
    assert (copy_.path, copy_.reason, copy_.message, copy_.url) == (
        "thumbnail.url",
        "invalid_record",
        err.message,
        "http://x/images/a",
    )
    err2 = CatalogueError("rate_limited", "slow down", url="u", status=429, retry_after=3.0)
    copy2 = pickle.loads(pickle.dumps(err2))
    assert (copy2.reason, copy2.retryable, copy2.retry_after, copy2.status) == (
        "rate_limited",
        True,
        3.0,
        429,
    )
    with pytest.raises(ValueError, match="unknown CatalogueError reason"):
        CatalogueError("oops", "x")
