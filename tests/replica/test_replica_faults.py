"""Fault injection: every kind appears at about its rate, exactly where the seed says, retries
can succeed, and permanent faults stay put."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
import requests
from PIL import Image

from services.replica.errors import TIMEOUT_MESSAGE
from services.replica.faults import FaultConfig, FaultPlan, FaultSpecError, max_in_window
from services.replica.server import run_replica

TRANSIENT = "seed=7,429=0.1,retry_after=2,5xx=0.1,slow=0.05,slow_s=0,truncated=0.05,drop=0.05"


def test_fault_spec_parsing() -> None:
    full = FaultConfig.parse(
        "seed=7,429=0.1,retry_after=1,5xx=0.1,slow=0.05,slow_s=2,malformed=0.02,truncated=0.01,"
        "corrupt_thumb=0.02,nonimage_thumb=0.01,missing=0.01,drop=0.02"
    )
    assert (full.seed, full.rate_429, full.rate_5xx, full.slow_s, full.missing) == (
        7,
        0.1,
        0.1,
        2.0,
        0.01,
    )
    assert FaultConfig.parse("429:0.1,5xx:0.1") == FaultConfig(rate_429=0.1, rate_5xx=0.1)
    assert FaultConfig.parse(full.to_spec()) == full
    assert not FaultConfig.parse("").active and FaultConfig.parse(None) == FaultConfig()
    for bad, message in [
        ("teapot=0.1", "unknown fault 'teapot'"),
        ("429=lots", "non-numeric value 'lots'"),
        ("5xx=1.5", "must be between 0 and 1"),
        ("429=0.6,5xx=0.6", "add up to 1.200 > 1"),
    ]:
        with pytest.raises(FaultSpecError, match=message):
            FaultConfig.parse(bad)


def _outcome(resp_or_exc) -> str:
    if isinstance(resp_or_exc, requests.ConnectionError):
        return "drop"
    resp = resp_or_exc
    if resp.status_code == 429:
        return "429"
    if resp.status_code >= 500:
        return "5xx"
    try:
        resp.json()
    except json.JSONDecodeError:
        return "truncated"
    return "ok"


def _fetch(url: str):
    try:
        return requests.get(url, timeout=30)
    except requests.ConnectionError as exc:
        return exc


def test_transient_faults_follow_the_seed(demo_dir: Path) -> None:
    config = FaultConfig.parse(TRANSIENT)
    with run_replica(demo_dir, faults=config) as rep:
        coll = rep.collection
        paths = [f"/catalogue/v2/images/{i}" for i in coll.ids]
        paths += [f"/catalogue/v2/images?page={p}&pageSize=1" for p in range(1, 235)]
        paths += [f"/image/{coll.asset_id(i)}/full/!100,100/0/default.jpg" for i in coll.ids[:150]]
        seen: Counter[str] = Counter()
        for path in paths:
            result = _fetch(rep.base_url + path)
            got = _outcome(result)
            if path.startswith("/image/") and got == "truncated":  # not JSON: a picture
                got = "truncated" if _broken_picture(result) else "ok"
            predicted = FaultPlan.transient_for(config, path, 0) or "ok"
            if predicted == "slow":
                predicted = "ok"  # slow_s=0: a slow answer is still a good one
            assert got == predicted, (path, got, predicted)
            seen[got] += 1
            if got == "429":
                assert result.headers["Retry-After"] == "2"
                if path.startswith("/catalogue"):
                    assert result.json()["label"] == "Throttled"
            if got == "5xx":
                assert result.status_code == FaultPlan.status_for(config, path, 0)
            if got == "5xx" and path.startswith("/catalogue"):
                body = result.json()
                assert body["httpStatus"] == result.status_code in (500, 502, 503)
                assert body.get("description") == (
                    TIMEOUT_MESSAGE if result.status_code == 503 else None
                )
        stats = rep.stats()
    n = len(paths)
    for kind, rate in [("429", 0.1), ("5xx", 0.1), ("drop", 0.05), ("truncated", 0.05)]:
        assert abs(seen[kind] - rate * n) < 4 * (rate * n) ** 0.5 + 3, (kind, seen[kind], n)
        assert stats["faults"][kind] == seen[kind]
    assert stats["faults"]["slow"] > 0
    assert stats["requests"]["catalogue"] + stats["requests"]["iiif"] == n


def _broken_picture(result) -> bool:
    if isinstance(result, Exception) or result.status_code != 200:
        return False
    try:
        Image.open(io.BytesIO(result.content)).load()
    except OSError:
        return True
    return False


def test_same_seed_same_faults_and_retries_succeed(demo_dir: Path) -> None:
    spec = "seed=3,429=0.2,5xx=0.2,drop=0.1,retry_after=0"
    runs = []
    for _ in range(2):
        with run_replica(demo_dir, faults=spec) as rep:
            ids = rep.collection.ids[:60]
            outcomes = {}
            for image_id in ids:
                url = f"{rep.catalogue_url}/images/{image_id}?include=withSimilarFeatures"
                attempts = []
                while not attempts or attempts[-1] != "ok":
                    attempts.append(_outcome(_fetch(url)))
                    assert len(attempts) < 15, attempts
                outcomes[image_id] = attempts
            runs.append(outcomes)
    assert runs[0] == runs[1]
    retried = [a for a in runs[0].values() if len(a) > 1]
    assert len(retried) > 10  # half the first attempts fail; every one eventually succeeded


def test_permanent_faults_are_permanent_and_predictable(demo_dir: Path) -> None:
    spec = "seed=11,missing=0.05,malformed=0.05,corrupt_thumb=0.05,nonimage_thumb=0.05"
    with run_replica(demo_dir, faults=spec) as rep:
        plan, coll = rep.fault_plan, rep.collection
        kinds = Counter()
        for image_id in coll.ids:
            reason = plan.is_permanently_bad(image_id)
            kinds[reason] += 1
            for _ in range(2):
                resp = requests.get(f"{rep.catalogue_url}/images/{image_id}", timeout=10)
                if plan.json_fault(image_id) == "missing":
                    assert resp.status_code == 404
                    assert resp.json()["description"] == (
                        f"Image not found for identifier {image_id}"
                    )
                elif plan.json_fault(image_id) == "malformed":
                    assert resp.status_code == 200
                    with pytest.raises(json.JSONDecodeError):
                        json.loads(resp.text)
                else:
                    assert resp.json()["id"] == image_id
            fault = plan.thumb_fault(image_id)
            if fault is None and kinds[None] > 40:
                continue  # enough good pictures checked
            thumb = requests.get(
                f"{rep.base_url}/image/{coll.asset_id(image_id)}/full/!200,200/0/default.jpg",
                timeout=10,
            )
            if fault == "nonimage_thumb":
                assert thumb.headers["Content-Type"].startswith("text/html")
            elif fault == "corrupt_thumb":
                assert thumb.headers["Content-Type"] == "image/jpeg"
                with pytest.raises(OSError):
                    Image.open(io.BytesIO(thumb.content)).load()
            else:
                Image.open(io.BytesIO(thumb.content)).load()
        # A missing image is still listed by its neighbours: the crawler meets a dangling id.
        missing = {i for i in coll.ids if plan.json_fault(i) == "missing"}
        lister = next(
            i for i in coll.ids if set(coll.similar_ids(i)) & missing and not plan.json_fault(i)
        )
        body = requests.get(
            f"{rep.catalogue_url}/images/{lister}",
            params={"include": "withSimilarFeatures"},
            timeout=10,
        ).json()
        assert {d["id"] for d in body["withSimilarFeatures"]} & missing
        stats = rep.stats()
    assert set(kinds) == {None, "missing", "malformed", "corrupt_thumb", "nonimage_thumb"}
    for kind in ("missing", "malformed", "corrupt_thumb", "nonimage_thumb"):
        assert 1 <= kinds[kind] <= 30, kinds
    assert stats["faults"]["missing"] >= 2 * kinds["missing"]
    # The same seed marks the same images in an independent plan (what tests precompute).
    other = FaultPlan(FaultConfig.parse(spec))
    assert all(other.is_permanently_bad(i) == plan.is_permanently_bad(i) for i in coll.ids)
    assert other.bad_ids(coll.ids) == {i: k for i in coll.ids if (k := plan.is_permanently_bad(i))}


def test_per_request_faults_and_dropped_connections(demo_replica) -> None:
    image_id = demo_replica.collection.ids[0]
    url = f"{demo_replica.catalogue_url}/images/{image_id}"
    assert requests.get(url, timeout=10).status_code == 200
    assert requests.get(url, params={"faults": "429=1"}, timeout=10).status_code == 429
    assert requests.get(url, params={"faults": "missing=1"}, timeout=10).status_code == 404
    with pytest.raises(requests.ConnectionError):
        requests.get(url, params={"faults": "drop=1"}, timeout=10)
    thumb = demo_replica.collection.document(image_id, demo_replica.base_url)["thumbnail"]["url"]
    with pytest.raises(requests.ConnectionError):
        requests.get(
            thumb.replace("info.json", "full/!400,400/0/default.jpg"),
            params={"faults": "drop=1"},
            timeout=10,
        )
    bad = requests.get(url, params={"faults": "teapot=1"}, timeout=10)
    assert bad.status_code == 400 and "unknown fault 'teapot'" in bad.json()["description"]
    # The server survives all of it.
    assert requests.get(url, timeout=10).status_code == 200
    stats = demo_replica.stats()
    assert stats["faults"] == {"429": 1, "missing": 1, "drop": 2}


def test_stats_count_requests_and_rates(demo_replica) -> None:
    for image_id in demo_replica.collection.ids[:12]:
        requests.get(f"{demo_replica.catalogue_url}/images/{image_id}", timeout=10)
    body = requests.get(
        f"{demo_replica.base_url}/_replica/stats",
        params={"timestamps": "1", "paths": "1"},
        timeout=10,
    ).json()
    assert body["requests"] == {"catalogue": 12}
    assert body["statuses"] == {"catalogue:200": 12}
    assert len(body["timestamps"]["catalogue"]) == 12
    assert body["max_per_second"]["catalogue"] == max_in_window(
        body["timestamps"]["catalogue"], 1.0
    )
    assert 1 <= body["max_per_second"]["catalogue"] <= 12
    assert sum(body["paths"].values()) == 12
    requests.post(f"{demo_replica.base_url}/_replica/reset", timeout=10)
    assert demo_replica.stats()["total_requests"] == 0


def test_max_in_window() -> None:
    assert max_in_window([], 1.0) == 0
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5, 3.0], 1.0) == 3
    assert max_in_window([5.0, 1.0, 1.2], 1.0) == 2
