"""Error answers, worded exactly as SPEC §3.4, §4.5 and §5 say."""

from __future__ import annotations

import pytest
import requests

SINGLE_CHOICES = (
    "['withSimilarFeatures', 'source.contributors', 'source.languages', "
    "'source.genres', 'source.subjects']"
)
LIST_INCLUDE_CHOICES = (
    "['source.contributors', 'source.languages', 'source.genres', 'source.subjects']"
)
AGG_CHOICES = (
    "['locations.license', 'source.contributors.agent.label', "
    "'source.contributors.agent', 'source.genres.label', 'source.genres', "
    "'source.subjects.label', 'source.subjects']"
)
WINDOW = (
    "Only the first 10000 images are available in the API. If you want more images, you "
    "can download a snapshot of the complete catalogue: "
    "https://developers.wellcomecollection.org/docs/datasets"
)


def _error(resp: requests.Response, status: int, description: str | None) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    labels = {400: "Bad Request", 404: "Not Found", 410: "Gone", 500: "Internal Server Error"}
    expected = {"errorType": "http", "httpStatus": status, "label": labels[status], "type": "Error"}
    if description is not None:
        expected["description"] = description
    assert body == expected
    assert list(body)[:3] == ["errorType", "httpStatus", "label"]


@pytest.mark.parametrize(
    ("path", "params", "status", "description"),
    [
        ("/images/zd224ncv]", {}, 404, "Image not found for identifier zd224ncv]"),
        ("/images/ZD224NCV", {}, 404, "Image not found for identifier ZD224NCV"),
        ("/images/blahblah", {}, 404, "Image not found for identifier blahblah"),
        # The id check comes first, whatever the parameters ...
        ("/images/BAD-ID", {"include": "foo"}, 404, "Image not found for identifier BAD-ID"),
        # ... then include parsing, before the lookup: an unknown id with a bad include is a 400.
        (
            "/images/blahblah",
            {"include": "foo"},
            400,
            f"include: 'foo' is not a valid value. Please choose one of: {SINGLE_CHOICES}",
        ),
        (
            "/images/blahblah",
            {"include": "foo,withSimilarFeatures,bar"},
            400,
            f"include: 'foo', 'bar' are not valid values. Please choose one of: {SINGLE_CHOICES}",
        ),
        (
            "/images/blahblah",
            {"include": "visuallySimilar"},
            400,
            "include: 'visuallySimilar' is not a valid value. "
            f"Please choose one of: {SINGLE_CHOICES}",
        ),
        ("/foo/bar", {}, 404, "Page not found for URL /catalogue/v2/foo/bar"),
    ],
)
def test_single_image_errors(docs_replica, path, params, status, description) -> None:
    resp = requests.get(docs_replica.catalogue_url + path, params=params, timeout=10)
    _error(resp, status, description)


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"pageSize": "0"}, "pageSize: must be between 1 and 100"),
        ({"pageSize": "101"}, "pageSize: must be between 1 and 100"),
        ({"pageSize": "-50"}, "pageSize: must be between 1 and 100"),
        ({"pageSize": "1000"}, "pageSize: must be between 1 and 100"),
        ({"pageSize": "penguin"}, "pageSize: must be a valid Integer"),
        ({"page": "0"}, "page: must be greater than 1"),
        ({"page": "-1"}, "page: must be greater than 1"),
        (
            {"page": "0", "pageSize": "101"},
            "page: must be greater than 1, pageSize: must be between 1 and 100",
        ),
        ({"page": "101", "pageSize": "100"}, WINDOW),
        ({"page": "10000"}, WINDOW),
        ({"page": "2147483647", "pageSize": "100"}, WINDOW),
        ({"color": "<"}, "color: '<' is not a valid value. Please supply a single hex string."),
        (
            {"color": "ff6700,ff0000,3610e8"},
            "color: 'ff6700,ff0000,3610e8' is not a valid value. "
            "Please supply a single hex string.",
        ),
        (
            {"include": "x"},
            f"include: 'x' is not a valid value. Please choose one of: {LIST_INCLUDE_CHOICES}",
        ),
        (
            {"include": "withSimilarFeatures"},
            "include: 'withSimilarFeatures' is not a valid value. Please choose one of: "
            f"{LIST_INCLUDE_CHOICES}",
        ),
        (
            {"aggregations": "x"},
            f"aggregations: 'x' is not a valid value. Please choose one of: {AGG_CHOICES}",
        ),
        (
            {"sort": "x"},
            "sort: 'x' is not a valid value. Please choose one of: ['source.production.dates']",
        ),
        (
            {"sortOrder": "x"},
            "sortOrder: 'x' is not a valid value. Please choose one of: ['asc', 'desc']",
        ),
        (
            {"source.production.dates.from": "1st May"},
            "source.production.dates.from: Invalid date encoding. Expected YYYY-MM-DD",
        ),
        (
            {"source.production.dates.from": "10000-01-01"},
            "source.production.dates.from: year must be less than 9999",
        ),
    ],
)
def test_list_errors(docs_replica, params, description) -> None:
    resp = requests.get(docs_replica.catalogue_url + "/images", params=params, timeout=10)
    _error(resp, 400, description)


def test_gone_and_method_and_iiif_errors(docs_replica) -> None:
    _error(
        requests.get(docs_replica.base_url + "/catalogue/v1/works", timeout=10),
        410,
        "This API is now decommissioned. Please use "
        "https://api.wellcomecollection.org/catalogue/v2/works.",
    )
    # IIIF errors are plain text, never catalogue JSON.
    bad = requests.get(docs_replica.base_url + "/image/NOPE/info.json", timeout=10)
    assert bad.status_code == 404 and bad.headers["Content-Type"].startswith("text/plain")
    assert "NOPE" in bad.text


def test_lenient_inputs_are_ignored(docs_replica) -> None:
    base = docs_replica.catalogue_url
    plain = requests.get(f"{base}/images", timeout=10).json()
    # Unknown parameters (and the old `colors` filter) are ignored; trailing slashes too.
    ignored = requests.get(
        f"{base}/images", params={"colors": "ff0000", "bogus": "1"}, timeout=10
    ).json()
    assert ignored.pop("nextPage").endswith("?colors=ff0000&bogus=1&page=2")
    assert plain.pop("nextPage").endswith("/images?page=2")
    assert ignored == plain
    slash = requests.get(f"{base}/images/", timeout=10).json()
    slash.pop("nextPage")
    assert slash == plain
    one = requests.get(f"{base}/images/hqnskj6m", timeout=10).json()
    assert requests.get(f"{base}/images/hqnskj6m/", timeout=10).json() == one
    assert requests.get(f"{base}/images/hqnskj6m", params={"foo": "bar"}, timeout=10).json() == one
    # Short hex is accepted (Integer.parseInt), as the catalogue does.
    assert requests.get(f"{base}/images", params={"color": "fff"}, timeout=10).status_code == 200


def test_health_and_unknown_paths(docs_replica) -> None:
    assert requests.get(docs_replica.base_url + "/management/healthcheck", timeout=10).json() == {
        "message": "ok"
    }
    _error(
        requests.get(docs_replica.base_url + "/nothing/here", timeout=10),
        404,
        "Page not found for URL /nothing/here",
    )
