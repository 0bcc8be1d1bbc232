"""End to end: the client against the real replica over real HTTP, with a real Redis.

Every fault the replica can inject either leaves the results exactly right (the client
retried) or ends in the documented error for that image; the shared rate limit holds across
two real processes (checked on the server's own request timestamps); Retry-After holds every
client back; the thumbnail guards refuse what they must; the similar-images include falls
back in both directions.
"""

from __future__ import annotations

import io
import multiprocessing
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import redis as redis_lib
from PIL import Image

from lookalike.catalogue import CatalogueClient
from lookalike.errors import CatalogueError
from lookalike.records import ImageRecord, parse_image
from lookalike.retry import BAD_BODY_ATTEMPTS
from lookalike.settings import load_settings
from services.replica import routes_catalogue
from services.replica.documents import SOURCE_INCLUDES
from services.replica.faults import FaultConfig, FaultPlan
from services.replica.server import run_replica
from tests.client.client_workers import fetch_many, window_excess


def reference_record(replica, image_id: str) -> ImageRecord:
    return parse_image(replica.collection.document(image_id, replica.base_url))


def reference(replica, image_id: str) -> tuple[ImageRecord, list[str], bytes]:
    """What the client must return for an image, read from the collection itself."""
    collection = replica.collection
    record = reference_record(replica, image_id)
    thumb = collection.thumbnail_bytes(collection.asset_id(image_id), "!400,400")
    return record, collection.similar_ids(image_id), thumb


def test_image_similar_and_thumbnail(replica, replica_settings) -> None:
    ids = replica.collection.ids[:5]
    with CatalogueClient(replica_settings()) as client:
        for image_id in ids:
            record, similar, thumb = reference(replica, image_id)
            result = client.get_image(image_id)
            assert result.image == record
            assert [s.id for s in result.similar] == similar
            assert len(similar) == 5
            assert result.similar_field == "withSimilarFeatures"
            for s in result.similar:  # neighbours are full, valid records too
                assert s == reference_record(replica, s.id)
            url = client.thumbnail_url(result.image)
            assert url.endswith("/full/!400,400/0/default.jpg")
            assert client.fetch_thumbnail(url) == thumb
        assert client.stats["retries"] == 0
    stats = replica.stats()
    assert stats["requests"] == {"catalogue": 5, "iiif": 5}


# Each fault kind alone, then the mix from the issue. Permanent faults end in the documented
# error for exactly the images the replica's plan marks bad; transient ones are retried away.
FAULT_CASES = [
    ("seed=3,429=0.3,retry_after=0.2", {}, 20),
    ("seed=4,5xx=0.3", {}, 20),
    ("seed=5,drop=0.3", {}, 20),
    ("seed=6,slow=0.15,slow_s=2", {"http_timeout": 0.7}, 12),
    ("seed=7,truncated=0.3", {}, 20),
    ("seed=8,malformed=0.2", {}, 25),
    ("seed=9,missing=0.2", {}, 25),
    ("seed=10,corrupt_thumb=0.2", {}, 25),
    ("seed=11,nonimage_thumb=0.2", {}, 25),
    (
        "seed=7,429=0.1,retry_after=1,5xx=0.1,malformed=0.02,corrupt_thumb=0.02,"
        "nonimage_thumb=0.01,missing=0.01,drop=0.02",
        {},
        30,
    ),
]
PERMANENT_REASON = {
    "missing": "not_found",
    "malformed": "malformed_json",
    "corrupt_thumb": "not_an_image",
    "nonimage_thumb": "not_an_image",
}


def expected_outcome(
    config: FaultConfig,
    key: str,
    permanent: str | None,
    bad_body_reason: str,
    max_retries: int,
    slow_fails: bool,
) -> str:
    """The outcome the client's documented policy must reach for one request key.

    The replica draws a transient fault per (key, n-th request), so the sequence the client
    meets is known in advance: connection-level faults (429, 5xx, drop, a slow answer past
    the timeout) use up the retry budget; bad bodies (truncated, malformed, not an image) get
    ``BAD_BODY_ATTEMPTS`` attempts; the first clean answer decides.
    """
    last = "ok"
    bad = 0
    for attempt in range(max_retries + 1):
        draw = FaultPlan.transient_for(config, key, attempt)
        if draw in ("429", "5xx", "drop") or (draw == "slow" and slow_fails):
            last = "rate_limited" if draw == "429" else "unavailable"
            continue
        if permanent == "not_found":
            return permanent  # a 404 is final, whatever happened to its body
        if draw == "truncated" or permanent is not None:
            bad += 1
            last = permanent or bad_body_reason
            if bad == BAD_BODY_ATTEMPTS:
                return last
            continue
        return "ok"
    return last


@pytest.mark.parametrize(("spec", "overrides", "n"), FAULT_CASES, ids=lambda v: str(v)[:40])
def test_faults_give_right_results_or_documented_errors(
    replica, replica_settings, spec: str, overrides: dict, n: int
) -> None:
    replica.set_faults(spec)
    config = FaultConfig.parse(spec)
    plan = replica.fault_plan
    settings = replica_settings(**overrides)
    ids = replica.collection.ids[:n]
    outcomes: dict[str, tuple[str, str]] = {}  # id -> (image outcome, thumbnail outcome)
    errors: list[CatalogueError] = []
    with CatalogueClient(settings) as client:
        for image_id in ids:
            record, similar, thumb = reference(replica, image_id)
            try:
                result = client.get_image(image_id)
            except CatalogueError as exc:
                json_outcome = exc.reason
                assert image_id in exc.message
                errors.append(exc)
            else:
                assert result.image == record
                assert [s.id for s in result.similar] == similar
                json_outcome = "ok"
            try:
                data = client.fetch_thumbnail(client.thumbnail_url(record))
            except CatalogueError as exc:
                thumb_outcome = exc.reason
                assert record.thumbnail_url.rsplit("/", 1)[0] in exc.message
                errors.append(exc)
            else:
                assert data == thumb
                thumb_outcome = "ok"
            outcomes[image_id] = (json_outcome, thumb_outcome)
        stats = dict(client.stats)

    slow_fails = config.slow_s > settings.http_timeout
    expected = {}
    for image_id in ids:
        asset = replica.collection.asset_id(image_id)
        json_fault, thumb_fault = plan.json_fault(image_id), plan.thumb_fault(image_id)
        expected[image_id] = (
            expected_outcome(
                config,
                f"/catalogue/v2/images/{image_id}?include=withSimilarFeatures",
                PERMANENT_REASON.get(json_fault or ""),
                "malformed_json",
                settings.max_retries,
                slow_fails,
            ),
            expected_outcome(
                config,
                f"/image/{asset}/full/!400,400/0/default.jpg",
                PERMANENT_REASON.get(thumb_fault or ""),
                "not_an_image",
                settings.max_retries,
                slow_fails,
            ),
        )
    assert outcomes == expected
    # Most images come through whatever the faults.
    assert sum(o == ("ok", "ok") for o in outcomes.values()) >= n // 2
    server = replica.stats()
    transient = any(
        getattr(config, k) for k in ("rate_429", "rate_5xx", "drop", "slow", "truncated")
    )
    if transient:
        assert sum(server["faults"].values()) > 0  # the faults really happened...
        assert stats["retries"] > 0  # ...and were retried
    else:
        assert set(expected.values()) != {("ok", "ok")}  # the sample has bad images
        # A permanent fault serves the same bad answer every time: not worth a retry later.
        assert errors and all(not e.retryable for e in errors)
    if config.rate_429:
        assert stats["pauses"] > 0
    if config.slow:
        assert stats["timeouts"] > 0


def test_rate_limit_holds_across_two_processes(
    replica, replica_settings, client_redis_url: str, key_prefix: str
) -> None:
    rate, burst = 8.0, 2
    settings = replica_settings(rate_limit=rate, rate_burst=burst)
    kwargs = {
        "catalogue_url": settings.catalogue_url,
        "image_hosts": settings.image_hosts,
        "rate_limit": rate,
        "rate_burst": burst,
        "backoff_base": settings.backoff_base,
    }
    ids = replica.collection.ids[:24]
    halves = [ids[0::2], ids[1::2]]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(abs, [1, 2])
        start_at = time.time() + 1.5
        runs = [
            pool.apply_async(fetch_many, (client_redis_url, kwargs, key_prefix, half, start_at))
            for half in halves
        ]
        results = [r.get(timeout=120) for r in runs]
    for half, result in zip(halves, results, strict=True):
        assert result["errors"] == {}
        assert result["fetched"] == {i: replica.collection.similar_ids(i) for i in half}
    times = replica.stats(timestamps=True)["timestamps"]["catalogue"]
    assert len(times) == len(ids)
    # Server-side arrival times wobble by scheduling, so allow two extra requests in any
    # window; without the shared limit both processes would send everything at once.
    assert window_excess(times, rate, burst) <= 2
    assert replica.stats()["max_per_second"]["catalogue"] <= rate + burst + 2
    assert max(times) - min(times) >= (len(ids) - burst) / rate - 0.5


def _first_attempt_429(replica, config: FaultConfig, exclude: set[str]) -> str:
    """An image whose first request is a 429 and whose retry is not (the plan is seeded)."""
    for image_id in replica.collection.ids:
        key = f"/catalogue/v2/images/{image_id}?include=withSimilarFeatures"
        if (
            image_id not in exclude
            and FaultPlan.transient_for(config, key, 0) == "429"
            and FaultPlan.transient_for(config, key, 1) is None
        ):
            return image_id
    raise AssertionError("no image with a 429 on its first request")


def _no_fault(replica, config: FaultConfig, exclude: set[str]) -> str:
    for image_id in replica.collection.ids:
        key = f"/catalogue/v2/images/{image_id}?include=withSimilarFeatures"
        if image_id not in exclude and FaultPlan.transient_for(config, key, 0) is None:
            return image_id
    raise AssertionError("no image without a fault")


def test_retry_after_holds_back_every_client(
    replica, replica_settings, client_redis: redis_lib.Redis, client_redis_url: str, key_prefix: str
) -> None:
    spec = "seed=21,429=0.5,retry_after=1.5"
    config = FaultConfig.parse(spec)
    throttled = _first_attempt_429(replica, config, set())
    calm = _no_fault(replica, config, {throttled})
    replica.set_faults(spec)
    settings = replica_settings()
    one = CatalogueClient(settings, client_redis, key_prefix=key_prefix)
    other = CatalogueClient.connect(
        replica_settings(redis_url=client_redis_url), key_prefix=key_prefix
    )
    results = {}
    worker = threading.Thread(target=lambda: results.setdefault("one", one.get_image(throttled)))
    worker.start()
    # The other client never sees the 429 itself; it learns of the pause through Redis.
    deadline = time.monotonic() + 10
    while other.limiter(replica.catalogue_url).paused_for() == 0:
        assert time.monotonic() < deadline, "no shared pause after the replica's 429"
        time.sleep(0.01)
    results["other"] = other.get_image(calm)
    worker.join(timeout=30)
    assert results["one"].image.id == throttled
    assert results["other"].image.id == calm
    first, *later = sorted(replica.stats(timestamps=True)["timestamps"]["catalogue"])
    assert len(later) == 2
    assert all(t - first >= 1.45 for t in later), [t - first for t in later]
    assert one.stats["throttled"] == 1 and one.stats["pauses"] == 1
    assert other.stats["throttled"] == 0 and other.stats["rate_wait_s"] > 0.5
    one.close()
    other.close()


def test_retry_after_exhausted_is_rate_limited(replica, replica_settings) -> None:
    replica.set_faults("seed=1,429=1,retry_after=0.5")
    image_id = replica.collection.ids[0]
    with (
        CatalogueClient(replica_settings(max_retries=1)) as client,
        pytest.raises(CatalogueError) as info,
    ):
        client.get_image(image_id)
    assert info.value.reason == "rate_limited"
    assert info.value.retryable and info.value.retry_after == 0.5
    first, second = replica.stats(timestamps=True)["timestamps"]["catalogue"]
    assert second - first >= 0.45


# ------------------------------------------------------------------------------ thumbnails


def test_thumbnail_guards(replica, replica_settings) -> None:
    record = reference_record(replica, replica.collection.ids[3])
    port = replica.image_host.rsplit(":", 1)[1]

    with CatalogueClient(replica_settings(image_hosts=(f"localhost:{port}",))) as client:
        with pytest.raises(CatalogueError) as info:
            client.thumbnail_url(record)
        assert info.value.reason == "forbidden_host"
        assert replica.image_host in info.value.message
        with pytest.raises(CatalogueError) as info:
            client.fetch_thumbnail(record.thumbnail_url.replace("info.json", "full/!9,9/0/x.jpg"))
        assert info.value.reason == "forbidden_host"
    assert replica.stats()["requests"] == {}  # refused before any request

    with CatalogueClient(replica_settings(max_thumbnail_bytes=2000)) as client:
        with pytest.raises(CatalogueError) as info:
            client.fetch_thumbnail(client.thumbnail_url(record))
        assert info.value.reason == "thumbnail_too_large"
        assert "2000" in info.value.message

    with CatalogueClient(replica_settings(max_thumbnail_pixels=5000)) as client:
        with pytest.raises(CatalogueError) as info:
            client.fetch_thumbnail(client.thumbnail_url(record))
        assert info.value.reason == "thumbnail_too_large"
        assert "pixels, over the limit of 5000" in info.value.message

    replica.set_faults("seed=1,nonimage_thumb=1")
    with CatalogueClient(replica_settings()) as client:
        with pytest.raises(CatalogueError) as info:
            client.fetch_thumbnail(client.thumbnail_url(record))
        assert info.value.reason == "not_an_image"
        assert "text/html" in info.value.message

    replica.set_faults("seed=1,corrupt_thumb=1")
    with CatalogueClient(replica_settings()) as client:
        with pytest.raises(CatalogueError) as info:
            client.fetch_thumbnail(client.thumbnail_url(record))
        assert info.value.reason == "not_an_image"
        assert "does not decode" in info.value.message or "is not an image" in info.value.message


def test_small_thumbnail_size_is_asked_for(replica, replica_settings) -> None:

    record = reference_record(replica, replica.collection.ids[4])
    with CatalogueClient(replica_settings(thumbnail_size=100)) as client:
        data = client.fetch_thumbnail(client.thumbnail_url(record))
    with Image.open(io.BytesIO(data)) as im:
        assert max(im.size) == 100


# -------------------------------------------------------------------- similar-images include


@pytest.fixture
def visually_similar_only_replica(client_demo_collection, monkeypatch):
    """A legacy replica whose include decoder knows only ``visuallySimilar``: a catalogue
    from before ``withSimilarFeatures`` existed (the replica's legacy mode accepts both)."""

    monkeypatch.setattr(
        routes_catalogue, "LEGACY_SINGLE_INCLUDES", ("visuallySimilar", *SOURCE_INCLUDES)
    )
    with run_replica(client_demo_collection, legacy=True) as handle:
        yield handle


def _settings_for(handle, **overrides):

    return load_settings(
        environ={},
        catalogue_url=handle.catalogue_url,
        image_hosts=(handle.image_host,),
        rate_limit=100.0,
        backoff_base=0.02,
        **overrides,
    )


def test_falls_back_to_visually_similar(visually_similar_only_replica) -> None:
    handle = visually_similar_only_replica
    ids = handle.collection.ids[:3]
    with CatalogueClient(_settings_for(handle)) as client:
        results = [client.get_image(i) for i in ids]
        assert client.similar_field == "visuallySimilar"
        assert client.stats["similar_fallbacks"] == 1
    for image_id, result in zip(ids, results, strict=True):
        assert result.similar_field == "visuallySimilar"
        assert [s.id for s in result.similar] == handle.collection.similar_ids(image_id)
    # One rejected request (the first), then straight to the include that works.
    assert handle.stats()["statuses"] == {"catalogue:400": 1, "catalogue:200": 3}


def test_legacy_setting_and_reverse_fallback(replica, replica_settings, client_demo_collection):

    image_id = replica.collection.ids[7]
    similar = replica.collection.similar_ids(image_id)
    # A modern catalogue rejects visuallySimilar: legacy_similar falls forward.
    with CatalogueClient(replica_settings(legacy_similar=True)) as client:
        result = client.get_image(image_id)
        assert result.similar_field == "withSimilarFeatures"
        assert [s.id for s in result.similar] == similar
    assert replica.stats()["statuses"] == {"catalogue:400": 1, "catalogue:200": 1}
    # A legacy catalogue accepts it straight away.
    with run_replica(client_demo_collection, legacy=True) as legacy:
        with CatalogueClient(_settings_for(legacy, legacy_similar=True)) as client:
            result = client.get_image(image_id)
        assert result.similar_field == "visuallySimilar"
        assert [s.id for s in result.similar] == similar
        assert legacy.stats()["statuses"] == {"catalogue:200": 1}


# ------------------------------------------------------------------------- list and snapshot


def test_iter_list_walks_everything_despite_faults(replica, replica_settings) -> None:
    replica.set_faults("seed=31,5xx=0.2,drop=0.1,truncated=0.1")
    with CatalogueClient(replica_settings()) as client:
        records = list(client.iter_list(25))
        assert client.stats["retries"] > 0
    assert [r.id for r in records] == list(replica.collection.ids)  # id order, every image
    assert records == [reference_record(replica, i) for i in replica.collection.ids]
    pages = replica.stats(paths=True)
    assert pages["requests"]["catalogue"] >= -(-len(records) // 25)


def test_iter_list_filters(replica, replica_settings) -> None:
    with CatalogueClient(replica_settings()) as client:
        pdm = [r for r in client.iter_list(50, **{"locations.license": "pdm"})]
    expected = [i for i in replica.collection.ids if reference_record(replica, i).license == "pdm"]
    assert [r.id for r in pdm] == expected
    assert all(r.license == "pdm" for r in pdm)


def test_snapshot_over_http_and_from_a_file(replica, replica_settings, tmp_path: Path) -> None:
    with CatalogueClient(replica_settings()) as client:
        from_url = list(client.iter_snapshot(replica.snapshot_url))
        local = tmp_path / "images.json.gz"
        with urllib.request.urlopen(replica.snapshot_url, timeout=30) as resp:
            local.write_bytes(resp.read())
        from_file = list(client.iter_snapshot(local))
    assert [r.id for r in from_url] == list(replica.collection.ids)
    assert from_file == from_url
    assert from_url == [reference_record(replica, i) for i in replica.collection.ids]
