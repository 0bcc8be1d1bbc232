"""Hostile uploads through the real API server (gunicorn): a small file of many pixels is
decoded small and hashed like its small copy, and eight of the worst kind at once stay within
the API's memory target."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lookalike.hashing import hamming, hash_image
from tests.hostile.pictures import drawing, png, worst_case_upload

pytestmark = pytest.mark.timeout(300)

MEMORY_TARGET_MB = 500


def search(api, data: bytes):
    return api.post("/search", files={"image": ("picture.png", data, "image/png")})


def test_a_small_file_of_many_pixels_is_hashed_as_its_small_copy(api) -> None:
    big = png(drawing(6300))  # ~75 KB, 40 M pixels
    r = search(api, big)
    assert r.status_code == 200, r.text
    small = hash_image(drawing(400)).as_dict()
    for kind in ("phash", "dhash", "ahash"):
        assert hamming(r.json()["hashes"][kind], small[kind]) <= 4, kind


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory (VmHWM) of ``pid`` and its children, the largest, in MB."""
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    peaks = []
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def test_eight_worst_case_uploads_at_once_stay_within_memory(known_graph, servers) -> None:
    local, _ = known_graph
    api = servers(local)  # its own process: nothing else has raised its peak
    data = worst_case_upload()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: search(api, data), range(8)))
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1
    assert peak_rss_mb(api.proc.pid) < MEMORY_TARGET_MB
