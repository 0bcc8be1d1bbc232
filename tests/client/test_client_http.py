"""The client over real HTTP against a scripted server: retries, errors, hosts, limits."""

from __future__ import annotations

import email.utils
import gzip
import json
import time
from pathlib import Path

import pytest
import redis as redis_lib

from lookalike.catalogue import CatalogueClient
from lookalike.errors import CatalogueError
from tests.client.client_docs import image_doc, jpeg_bytes, png_bytes
from tests.client.client_http_server import Reply, ScriptedServer

IMG = "/catalogue/v2/images/aaaa1111"


def _similar_doc(base: str) -> dict:
    return image_doc(
        "aaaa1111",
        base=base,
        similar=[image_doc("bbbb2222", base=base), image_doc("cccc3333", base=base)],
    )


def test_get_image_sends_user_agent_and_parses(scripted: ScriptedServer, scripted_settings) -> None:
    scripted.route(IMG, Reply(200, _similar_doc(scripted.base)))
    settings = scripted_settings()
    with CatalogueClient(settings) as client:
        result = client.get_image("aaaa1111")
    assert [s.id for s in result.similar] == ["bbbb2222", "cccc3333"]
    assert result.similar_field == "withSimilarFeatures"
    (hit,) = scripted.hits
    assert hit.query == {"include": ["withSimilarFeatures"]}
    assert hit.headers["User-Agent"] == settings.user_agent
    assert "Lookalike" in hit.headers["User-Agent"]


def test_retries_5xx_and_dropped_connections(scripted: ScriptedServer, scripted_settings) -> None:
    doc = _similar_doc(scripted.base)
    scripted.route(
        IMG,
        Reply(503, {"description": "Please try again in a short while!"}),
        Reply(500, {"type": "Error"}),
        # Content-Length promises more than is sent, then the server hangs up.
        Reply(200, json.dumps(doc)[:50], content_length=5000),
        Reply(200, doc),
    )
    with CatalogueClient(scripted_settings(max_retries=3)) as client:
        assert client.get_image("aaaa1111").image.id == "aaaa1111"
        stats = client.stats
    assert len(scripted.hits) == 4
    assert stats["retries"] == 3
    assert stats["server_errors"] == 2
    assert stats["connection_errors"] == 1
    assert stats["backoff_s"] > 0


def test_5xx_exhausts_retries(scripted: ScriptedServer, scripted_settings) -> None:
    scripted.route(IMG, Reply(502, "<html>Bad gateway</html>"))
    with (
        CatalogueClient(scripted_settings(max_retries=2)) as client,
        pytest.raises(CatalogueError) as info,
    ):
        client.get_image("aaaa1111")
    assert info.value.reason == "unavailable"
    assert info.value.retryable
    assert "502" in info.value.message and "3 attempts" in info.value.message
    assert len(scripted.hits) == 3


@pytest.mark.parametrize(("status", "reason"), [(404, "not_found"), (410, "http_error")])
def test_no_retry_on_client_errors(
    scripted: ScriptedServer, scripted_settings, status: int, reason: str
) -> None:
    scripted.route(IMG, Reply(status, {"description": "Image not found for identifier aaaa1111"}))
    with CatalogueClient(scripted_settings()) as client, pytest.raises(CatalogueError) as info:
        client.get_image("aaaa1111", similar=False)
    assert info.value.reason == reason
    assert info.value.status == status
    assert "aaaa1111" in info.value.message
    assert len(scripted.hits) == 1


def test_bad_id_is_refused_without_a_request(scripted: ScriptedServer, scripted_settings) -> None:
    with CatalogueClient(scripted_settings()) as client:
        for bad in ("ABC", "a/../b", "x?y", ""):
            with pytest.raises(CatalogueError, match="not a catalogue image id") as info:
                client.get_image(bad)
            assert info.value.reason == "not_found"
    assert scripted.hits == []


def test_fallback_to_visually_similar_is_remembered(
    scripted: ScriptedServer, scripted_settings
) -> None:
    legacy = image_doc(
        "aaaa1111",
        base=scripted.base,
        similar=[image_doc("bbbb2222", base=scripted.base)],
        similar_field="visuallySimilar",
    )

    def answer(hit) -> Reply:
        if hit.query.get("include") == ["visuallySimilar"]:
            return Reply(200, legacy)
        return Reply(
            400,
            {
                "httpStatus": 400,
                "label": "Bad Request",
                "type": "Error",
                "description": "include: 'withSimilarFeatures' is not a valid value.",
            },
        )

    scripted.route(IMG, answer)
    with CatalogueClient(scripted_settings()) as client:
        first = client.get_image("aaaa1111")
        second = client.get_image("aaaa1111")
        assert client.similar_field == "visuallySimilar"
        assert client.stats["similar_fallbacks"] == 1
    assert first.similar_field == second.similar_field == "visuallySimilar"
    assert [s.id for s in first.similar] == ["bbbb2222"]
    includes = [h.query["include"][0] for h in scripted.hits]
    # Tried the modern include once, never again.
    assert includes == ["withSimilarFeatures", "visuallySimilar", "visuallySimilar"]


def test_legacy_setting_asks_visually_similar_first(
    scripted: ScriptedServer, scripted_settings
) -> None:
    scripted.route(
        IMG,
        Reply(
            200,
            image_doc("aaaa1111", base=scripted.base, similar=[], similar_field="visuallySimilar"),
        ),
    )
    with CatalogueClient(scripted_settings(legacy_similar=True)) as client:
        assert client.get_image("aaaa1111").similar_field == "visuallySimilar"
    assert [h.query["include"] for h in scripted.hits] == [["visuallySimilar"]]


def test_both_includes_rejected(scripted: ScriptedServer, scripted_settings) -> None:
    scripted.route(IMG, Reply(400, {"description": "include: not a valid value"}))
    with CatalogueClient(scripted_settings()) as client, pytest.raises(CatalogueError) as info:
        client.get_image("aaaa1111")
    assert info.value.reason == "bad_request"
    assert "withSimilarFeatures, visuallySimilar" in info.value.message
    assert len(scripted.hits) == 2  # one each, 400 is never retried


def test_malformed_json_names_url_and_problem(scripted: ScriptedServer, scripted_settings) -> None:
    body = json.dumps(_similar_doc(scripted.base))
    scripted.route(
        IMG, Reply(200, body[: len(body) // 2], headers={"Content-Type": "application/json"})
    )
    with (
        CatalogueClient(scripted_settings(max_retries=4)) as client,
        pytest.raises(CatalogueError) as info,
    ):
        client.get_image("aaaa1111")
    err = info.value
    assert err.reason == "malformed_json"
    assert f"{scripted.base}{IMG}?include=withSimilarFeatures" in err.message
    assert "truncated" in err.message
    # A bad body gets 3 attempts, not the full budget; the same body each time is the
    # catalogue's own data, so not worth retrying later either.
    assert "a bad body came back 3 times, the same each time" in err.message
    assert err.retryable is False
    assert len(scripted.hits) == 3


def test_garbled_body_once_is_retried(scripted: ScriptedServer, scripted_settings) -> None:
    body = json.dumps(_similar_doc(scripted.base))
    scripted.route(IMG, Reply(200, body.replace('":', '"=', 1)), Reply(200, body))
    with CatalogueClient(scripted_settings()) as client:
        assert client.get_image("aaaa1111").image.id == "aaaa1111"
        assert client.stats["malformed_json"] == 1
    assert len(scripted.hits) == 2


def test_wrong_record_is_named_with_url(scripted: ScriptedServer, scripted_settings) -> None:
    doc = _similar_doc(scripted.base)
    del doc["withSimilarFeatures"][1]["thumbnail"]["url"]
    scripted.route(IMG, Reply(200, doc))
    with CatalogueClient(scripted_settings()) as client, pytest.raises(CatalogueError) as info:
        client.get_image("aaaa1111")
    assert info.value.reason == "invalid_record"
    assert info.value.message.startswith("withSimilarFeatures[1].thumbnail.url: missing (in the")
    assert IMG in info.value.message
    assert len(scripted.hits) == 1


def test_response_for_another_id_is_refused(scripted: ScriptedServer, scripted_settings) -> None:
    scripted.route(IMG, Reply(200, image_doc("zzzz9999", base=scripted.base, similar=[])))
    with (
        CatalogueClient(scripted_settings()) as client,
        pytest.raises(CatalogueError, match="id: asked for 'aaaa1111' but got 'zzzz9999'"),
    ):
        client.get_image("aaaa1111")


def test_timeouts_and_refused_connections(scripted: ScriptedServer, scripted_settings) -> None:
    scripted.route(IMG, Reply(200, _similar_doc(scripted.base), delay=1.0))
    with CatalogueClient(scripted_settings(http_timeout=0.3, max_retries=1)) as client:
        with pytest.raises(CatalogueError) as info:
            client.get_image("aaaa1111")
        assert info.value.reason == "unavailable"
        assert "timed out" in info.value.message
        assert client.stats["timeouts"] == 2
    closed = scripted_settings(catalogue_url="http://127.0.0.1:9/catalogue/v2", max_retries=1)
    with CatalogueClient(closed) as client:
        with pytest.raises(CatalogueError) as info:
            client.get_image("aaaa1111")
        assert info.value.reason == "unavailable"
        assert client.stats["connection_errors"] == 2


def test_retry_after_is_honoured_by_every_client(
    scripted: ScriptedServer, scripted_settings, client_redis: redis_lib.Redis, key_prefix: str
) -> None:
    """A 429 with Retry-After pauses the shared limiter: no client sends before it ends."""
    doc = _similar_doc(scripted.base)
    scripted.route(
        IMG, Reply(429, {"label": "Throttled"}, headers={"Retry-After": "1"}), Reply(200, doc)
    )
    other_path = "/catalogue/v2/images/bbbb2222"
    scripted.route(other_path, Reply(200, image_doc("bbbb2222", base=scripted.base, similar=[])))
    settings = scripted_settings()
    one = CatalogueClient(settings, client_redis, key_prefix=key_prefix)
    other = CatalogueClient(
        settings,
        redis_lib.Redis(connection_pool=client_redis.connection_pool),
        key_prefix=key_prefix,
    )
    assert one.get_image("aaaa1111").image.id == "aaaa1111"
    assert one.stats["throttled"] == 1 and one.stats["pauses"] == 1
    first, retry = scripted.hits_for(IMG)
    assert retry.at - first.at >= 0.95  # the retry waited out Retry-After
    # A second client sharing the Redis also respects the pause it did not see itself.
    scripted.route(
        IMG, Reply(429, {"label": "Throttled"}, headers={"Retry-After": "1"}), Reply(200, doc)
    )
    scripted.hits.clear()
    one.get_image("aaaa1111", similar=True)
    assert other.get_image("bbbb2222").image.id == "bbbb2222"
    throttled_at = scripted.hits_for(IMG)[0].at
    assert scripted.hits_for(other_path)[0].at - throttled_at >= 0.95
    one.close()
    other.close()


def test_429_without_retry_after_pauses_everyone_a_backoff_step(
    scripted: ScriptedServer, scripted_settings
) -> None:
    scripted.route(IMG, Reply(429, {"label": "Throttled"}), Reply(200, _similar_doc(scripted.base)))
    with CatalogueClient(scripted_settings(backoff_base=0.4)) as client:
        client.get_image("aaaa1111")
        assert client.stats["pauses"] == 1 and client.stats["throttled"] == 1
    first, retry = scripted.hits
    assert retry.at - first.at >= 0.19  # at least half of the first backoff step (0.4 s)


def test_retry_after_http_date(scripted: ScriptedServer, scripted_settings) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # whole seconds: 1-2 s away
    scripted.route(
        IMG,
        Reply(503, {"label": "x"}, headers={"Retry-After": when}),
        Reply(200, _similar_doc(scripted.base)),
    )
    with CatalogueClient(scripted_settings()) as client:
        client.get_image("aaaa1111")
    first, retry = scripted.hits
    assert retry.at >= email.utils.parsedate_to_datetime(when).timestamp() - 0.05
    assert retry.at - first.at >= 0.9


def test_long_retry_after_gives_the_task_back(scripted: ScriptedServer, scripted_settings) -> None:
    scripted.route(IMG, Reply(429, {"label": "Throttled"}, headers={"Retry-After": "120"}))
    with CatalogueClient(scripted_settings(backoff_max=2.0)) as client:
        started = time.monotonic()
        with pytest.raises(CatalogueError) as info:
            client.get_image("aaaa1111")
        assert time.monotonic() - started < 60  # it did not sit out the two minutes
        assert info.value.reason == "rate_limited"
        assert info.value.retry_after == 120
        assert client.limiter(scripted.base).paused_for() > 100
        # Every later request is held back too, without touching the server.
        with pytest.raises(CatalogueError) as again:
            client.get_image("aaaa1111")
        assert again.value.reason == "rate_limited"
        assert again.value.retry_after > 100
    assert len(scripted.hits) == 1


# ------------------------------------------------------------------------------ thumbnails


def test_thumbnail_url_and_fetch(scripted: ScriptedServer, scripted_settings) -> None:
    settings = scripted_settings(thumbnail_size=200)
    client = CatalogueClient(settings)
    record = client_record(scripted)
    url = client.thumbnail_url(record)
    assert url == f"{scripted.base}/image/A1/full/!200,200/0/default.jpg"
    jpeg = jpeg_bytes()
    scripted.route(
        "/image/A1/full/!200,200/0/default.jpg", Reply(200, jpeg, {"Content-Type": "image/jpeg"})
    )
    assert client.fetch_thumbnail(url) == jpeg
    client.close()


def client_record(scripted: ScriptedServer):
    from lookalike.records import parse_image

    return parse_image(image_doc("aaaa1111", base=scripted.base, asset="A1"))


def test_foreign_thumbnail_host_refused_before_any_request(
    scripted: ScriptedServer, scripted_settings
) -> None:
    client = CatalogueClient(scripted_settings())
    foreign = f"http://localhost:{scripted.port}/image/A1/info.json"  # same server, other name
    with pytest.raises(CatalogueError) as info:
        client.thumbnail_url(foreign)
    assert info.value.reason == "forbidden_host"
    assert f"localhost:{scripted.port}" in info.value.message
    for url in (
        f"http://localhost:{scripted.port}/image/A1/full/!400,400/0/default.jpg",
        f"http://127.0.0.1:{scripted.port}@localhost:{scripted.port}/x.jpg",
        "file:///etc/passwd",
    ):
        with pytest.raises(CatalogueError) as info:
            client.fetch_thumbnail(url)
        assert info.value.reason == "forbidden_host"
    assert scripted.hits == []
    client.close()


def test_redirect_to_foreign_host_refused(scripted: ScriptedServer, scripted_settings) -> None:
    path = "/image/A1/full/!400,400/0/default.jpg"
    foreign = f"http://localhost:{scripted.port}/elsewhere.jpg"
    scripted.route(path, Reply(302, b"", {"Location": foreign}))
    scripted.route("/elsewhere.jpg", Reply(200, jpeg_bytes(), {"Content-Type": "image/jpeg"}))
    scripted.route("/image/A2/ok.jpg", Reply(301, b"", {"Location": "/image/A2/real.jpg"}))
    scripted.route("/image/A2/real.jpg", Reply(200, jpeg_bytes(), {"Content-Type": "image/jpeg"}))
    with CatalogueClient(scripted_settings()) as client:
        with pytest.raises(CatalogueError) as info:
            client.fetch_thumbnail(f"{scripted.base}{path}")
        assert info.value.reason == "forbidden_host"
        assert "redirected to" in info.value.message and foreign in info.value.message
        assert scripted.hits_for("/elsewhere.jpg") == []
        # A redirect within the allowed host is followed.
        assert client.fetch_thumbnail(f"{scripted.base}/image/A2/ok.jpg")[:2] == b"\xff\xd8"


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_thumbnail_refused(
    scripted: ScriptedServer, scripted_settings, chunked: bool
) -> None:
    big = jpeg_bytes((64, 48)) + b"\0" * 200_000
    scripted.route(
        "/image/big.jpg", Reply(200, big, {"Content-Type": "image/jpeg"}, chunked=chunked)
    )
    with (
        CatalogueClient(scripted_settings(max_thumbnail_bytes=100_000)) as client,
        pytest.raises(CatalogueError) as info,
    ):
        client.fetch_thumbnail(f"{scripted.base}/image/big.jpg")
    assert info.value.reason == "thumbnail_too_large"
    assert "100000" in info.value.message
    assert len(scripted.hits) == 1


def test_too_many_pixels_refused(scripted: ScriptedServer, scripted_settings) -> None:
    scripted.route(
        "/image/wide.png", Reply(200, png_bytes((3000, 2000)), {"Content-Type": "image/png"})
    )
    with (
        CatalogueClient(scripted_settings(max_thumbnail_pixels=1_000_000)) as client,
        pytest.raises(CatalogueError) as info,
    ):
        client.fetch_thumbnail(f"{scripted.base}/image/wide.png")
    assert info.value.reason == "thumbnail_too_large"
    assert "3000x2000" in info.value.message


@pytest.mark.parametrize(
    ("body", "ctype", "expect"),
    [
        (b"<html>Not found</html>", "text/html", "sent 'text/html' instead of an image"),
        (b"GIF89a-but-not-really", "image/gif", "is not an image"),
        (b"", "image/jpeg", "is not an image"),
        (None, "image/jpeg", "does not decode"),  # a real JPEG header, the rest cut off
    ],
)
def test_non_image_refused(
    scripted: ScriptedServer, scripted_settings, body: bytes | None, ctype: str, expect: str
) -> None:
    if body is None:
        full = jpeg_bytes((300, 200), "red")
        body = full[: len(full) * 3 // 4]
    scripted.route("/image/x.jpg", Reply(200, body, {"Content-Type": ctype}))
    with CatalogueClient(scripted_settings()) as client, pytest.raises(CatalogueError) as info:
        client.fetch_thumbnail(f"{scripted.base}/image/x.jpg")
    assert info.value.reason == "not_an_image"
    assert expect in info.value.message
    assert "/image/x.jpg" in info.value.message


# ------------------------------------------------------------------------- list and snapshot


def _page(base: str, ids: list[str], page: int, pages: int, total: int) -> dict:
    doc = {
        "type": "ResultList",
        "pageSize": len(ids),
        "totalPages": pages,
        "totalResults": total,
        "results": [image_doc(i, base=base) for i in ids],
    }
    if page < pages:
        doc["nextPage"] = f"https://api.wellcomecollection.org/catalogue/v2/images?page={page + 1}"
    return doc


def test_iter_list_follows_pages_and_skips_bad_records(
    scripted: ScriptedServer, scripted_settings
) -> None:
    ids = [f"img{n:05d}" for n in range(7)]

    def answer(hit) -> Reply:
        page, size = int(hit.query["page"][0]), int(hit.query["pageSize"][0])
        doc = _page(scripted.base, ids[(page - 1) * size : page * size], page, 3, 7)
        if page == 2:
            del doc["results"][0]["source"]
        return Reply(200, doc)

    scripted.route("/catalogue/v2/images", answer)
    errors: list[CatalogueError] = []
    with CatalogueClient(scripted_settings()) as client:
        got = [
            r.id
            for r in client.iter_list(3, on_error=errors.append, **{"locations.license": "pdm"})
        ]
    assert got == ids[:3] + ids[4:]
    assert [e.message.split(" (")[0] for e in errors] == ["results[0].source: missing"]
    assert "page=2" in errors[0].message
    assert [h.query["page"] for h in scripted.hits] == [["1"], ["2"], ["3"]]
    assert all(h.query["locations.license"] == ["pdm"] for h in scripted.hits)


def test_iter_list_stops_at_the_10000_window(scripted: ScriptedServer, scripted_settings) -> None:
    def answer(hit) -> Reply:
        page = int(hit.query["page"][0])
        if page > 100:
            return Reply(400, {"description": "Only the first 10000 images are available"})
        return Reply(
            200,
            _page(scripted.base, [f"p{page:04d}x{i:03d}" for i in range(100)], page, 150, 15000),
        )

    scripted.route("/catalogue/v2/images", answer)
    with CatalogueClient(scripted_settings(rate_limit=1000.0, rate_burst=100)) as client:
        count = sum(1 for _ in client.iter_list(100))
        assert client.stats["list_window_truncated"] == 1
    assert count == 10_000
    assert len(scripted.hits) == 100  # never asked for the page the API would refuse


def _snapshot_lines(base: str, n: int) -> list[bytes]:
    return [json.dumps(image_doc(f"snap{i:04d}", base=base)).encode() + b"\n" for i in range(n)]


def test_snapshot_from_local_gzip_with_bad_lines(tmp_path: Path, scripted_settings) -> None:
    lines = _snapshot_lines("https://iiif.wellcomecollection.org", 5)
    lines[1] = b'{"id": "snap0001", "thumbn\n'
    bad = json.loads(lines[3])
    bad["aspectRatio"] = "wide"
    lines[3] = json.dumps(bad).encode() + b"\n"
    path = tmp_path / "images.json.gz"
    path.write_bytes(gzip.compress(b"".join(lines)))
    errors: list[CatalogueError] = []
    with CatalogueClient(scripted_settings()) as client:
        got = [r.id for r in client.iter_snapshot(path, on_error=errors.append)]
    assert got == ["snap0000", "snap0002", "snap0004"]
    assert [e.reason for e in errors] == ["malformed_json", "invalid_record"]
    assert "line 2 is not valid JSON" in errors[0].message
    assert errors[1].message == f"aspectRatio: expected a number, got a string ({path} line 4)"


def test_truncated_snapshot_raises_after_what_it_could_read(
    tmp_path: Path, scripted_settings
) -> None:
    data = gzip.compress(b"".join(_snapshot_lines("https://iiif.wellcomecollection.org", 50)))
    path = tmp_path / "images.json.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    got: list[str] = []
    with CatalogueClient(scripted_settings()) as client, pytest.raises(CatalogueError) as info:
        for record in client.iter_snapshot(path):
            got.append(record.id)
    assert info.value.reason == "malformed_json"
    assert "truncated or corrupt" in info.value.message and str(path) in info.value.message
    assert 0 < len(got) < 50
    with CatalogueClient(scripted_settings()) as client, pytest.raises(FileNotFoundError):
        list(client.iter_snapshot(tmp_path / "missing.json.gz"))


def test_snapshot_over_http_and_host_check(scripted: ScriptedServer, scripted_settings) -> None:
    plain = b"".join(_snapshot_lines(scripted.base, 3))
    scripted.route(
        "/snapshots/images.json.gz",
        Reply(200, gzip.compress(plain), {"Content-Type": "application/gzip"}),
    )
    scripted.route("/snapshots/images.jsonl", Reply(200, plain, chunked=True))
    with CatalogueClient(scripted_settings()) as client:
        got = [r.id for r in client.iter_snapshot(f"{scripted.base}/snapshots/images.json.gz")]
        assert got == ["snap0000", "snap0001", "snap0002"]
        assert len(list(client.iter_snapshot(f"{scripted.base}/snapshots/images.jsonl"))) == 3
        with pytest.raises(CatalogueError) as info:
            list(client.iter_snapshot(f"http://localhost:{scripted.port}/snapshots/images.json.gz"))
        assert info.value.reason == "forbidden_host"
    assert len(scripted.hits) == 2


def test_requests_go_through_the_proxy_the_environment_names(
    scripted: ScriptedServer, scripted_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client reads proxies from the environment once per host instead of on every
    request, and still honours them: HTTP_PROXY is used, NO_PROXY bypasses it."""
    for var in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", scripted.base)  # the scripted server plays the proxy
    scripted.route(IMG, Reply(200, _similar_doc(scripted.base)))
    # A host that does not exist: only a proxy can reach it.
    settings = scripted_settings(catalogue_url="http://catalogue.invalid/catalogue/v2")
    with CatalogueClient(settings) as client:
        for _ in range(2):
            assert client.get_image("aaaa1111").image.id == "aaaa1111"
    assert [h.headers["Host"] for h in scripted.hits] == ["catalogue.invalid"] * 2

    # NO_PROXY: straight to the host, past a proxy that would refuse the connection.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with CatalogueClient(scripted_settings()) as client:
        assert client.get_image("aaaa1111").image.id == "aaaa1111"
    assert scripted.hits[-1].headers["Host"] == f"127.0.0.1:{scripted.port}"
