"""Upload memory benchmark: the API's peak memory under concurrent worst-case picture uploads
(``POST /search``), against what decoding one such picture the old way costs, measured in the
same run.

- **Picture:** a PNG of ``--side`` x ``--side`` RGBA pixels (6300: 39.7 M pixels, just under
  the API's upload cap of 40 M), a drawing that compresses to ~200 KB: the most decoded memory
  per byte sent that the limits let through.
- **API:** ``lookalike serve`` (gunicorn, 1 worker x 16 threads: the defaults) on an empty
  graph in its own embedded ArcadeDB. ``--clients`` uploads at once (default 8), ``--rounds``
  times. Reported: the peak resident memory (VmHWM) of the server's processes, its memory
  after start and after one small upload (its floor), and the seconds each upload took.
- **Baseline:** the same picture decoded as uploads were before decoding got bounded
  (``PIL.Image.open(...).convert("RGB")`` at full size, then the five hashes and those of
  its mirror image), once, in a fresh Python process: its peak resident memory.

Target: the API's peak under 500 MB. Prints a table and writes the figures (with the date,
the git commit and the load average at start and end) to ``bench/results/uploads.json``.

    python bench/bench_uploads.py
    python bench/bench_uploads.py --clients 4 --rounds 1    # a quicker look
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _report import publish  # noqa: E402
from bench_api import api_process, graph_target  # noqa: E402

from lookalike.graph import GraphStore  # noqa: E402

RESULTS = REPO / "bench" / "results" / "uploads.json"
TARGET_MB = 500.0

# The old way, in a process of its own: decode whole, convert to RGB, hash it and its mirror.
_OLD_DECODE = """
import io, resource, sys
from PIL import Image
from lookalike.hashing import hash_image, mirrored_hashes
data = sys.stdin.buffer.read()
with Image.open(io.BytesIO(data)) as probe:
    probe.load()
    image = probe.convert("RGB")
hash_image(image); mirrored_hashes(image)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def picture(side: int) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (side, side), "gray")
    draw = ImageDraw.Draw(image)
    draw.rectangle([0.1 * side, 0.2 * side, 0.45 * side, 0.75 * side], fill="black")
    draw.ellipse([0.55 * side, 0.1 * side, 0.9 * side, 0.55 * side], fill="white")
    draw.line([0, side, side, 0.6 * side], fill="white", width=max(1, side // 25))
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _pids(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(p for c in children for p in _pids(int(c)))]


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory(pid: int) -> dict[str, float]:
    """The server's current and peak resident memory, in MB: the largest of its processes
    (gunicorn's master does not decode; its worker does) and their sum."""
    pids = _pids(pid)
    rss = [_status_mb(p, "VmRSS") for p in pids]
    peak = [_status_mb(p, "VmHWM") for p in pids]
    return {
        "rss_mb": round(max(rss), 1),
        "rss_total_mb": round(sum(rss), 1),
        "peak_mb": round(max(peak), 1),
        "peak_total_mb": round(sum(peak), 1),
    }


def old_decode_peak(data: bytes) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _OLD_DECODE],
        input=data,
        capture_output=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return round(float(out.stdout.decode().split()[-1]), 1)


def upload(url: str, data: bytes) -> tuple[int, float]:
    import requests

    start = time.perf_counter()
    r = requests.post(url + "/search", files={"image": ("p.png", data, "image/png")}, timeout=300)
    return r.status_code, time.perf_counter() - start


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    load_before = os.getloadavg()[0]
    data = picture(args.side)
    small = picture(64)
    print(f"picture: {args.side}x{args.side} RGBA PNG, {len(data):,} bytes", file=sys.stderr)
    print("baseline: the old decode in a fresh process...", file=sys.stderr)
    baseline = old_decode_peak(data)
    with graph_target(None, True) as (settings, _):
        with GraphStore.connect(settings) as store:
            store.ensure_schema()
        with api_process(settings, 1, 16) as (url, proc):
            started_mem = memory(proc.pid)
            status, _ = upload(url, small)
            if status != 200:
                sys.exit(f"a small upload answered {status}")
            floor = memory(proc.pid)
            sampled = [floor["rss_mb"]]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.05):
                    sampled.append(memory(proc.pid)["rss_mb"])

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            answers: list[tuple[int, float]] = []
            for n in range(args.rounds):
                print(
                    f"round {n + 1}/{args.rounds}: {args.clients} uploads at once...",
                    file=sys.stderr,
                )
                with ThreadPoolExecutor(args.clients) as pool:
                    answers += list(pool.map(lambda _: upload(url, data), range(args.clients)))
            done.set()
            sampler.join()
            final = memory(proc.pid)
    seconds = sorted(s for _, s in answers)
    statuses = sorted({code for code, _ in answers})
    return {
        "benchmark": "uploads",
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "git_commit": git_commit(),
        "wall_seconds": round(time.time() - started, 1),
        "cpus": os.cpu_count(),
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "python": platform.python_version(),
        "picture": {
            "side": args.side,
            "mode": "RGBA",
            "bytes": len(data),
            "pixels": args.side * args.side,
        },
        "clients": args.clients,
        "rounds": args.rounds,
        "statuses": statuses,
        "upload_seconds": {
            "p50": round(seconds[len(seconds) // 2], 2),
            "max": round(seconds[-1], 2),
        },
        "api": {
            "after_start": started_mem,
            "floor": floor,
            "end": final,
            "peak_mb": final["peak_mb"],
            "peak_total_mb": final["peak_total_mb"],
            "sampled_max_rss_mb": round(max(sampled), 1),
        },
        "baseline_old_decode_one_picture_mb": baseline,
        "target_mb": TARGET_MB,
        "target_met": final["peak_mb"] < TARGET_MB and statuses == [200],
    }


def table(r: dict[str, Any]) -> str:
    api = r["api"]
    return "\n".join(
        [
            f"upload memory, {r['date']}, commit {r['git_commit']}, load "
            f"{r['loadavg_1min'][0]} -> {r['loadavg_1min'][1]}",
            f"picture: {r['picture']['side']}x{r['picture']['side']} RGBA PNG, "
            f"{r['picture']['bytes']:,} bytes",
            f"baseline, the old decode of ONE such picture:      "
            f"{r['baseline_old_decode_one_picture_mb']:7.1f} MB peak",
            f"API after start / after one small upload (floor): "
            f"{api['after_start']['rss_mb']:7.1f} / {api['floor']['rss_mb']:.1f} MB",
            f"API peak, {r['clients']} uploads at once x {r['rounds']} rounds:      "
            f"{api['peak_mb']:7.1f} MB (worker; all processes {api['peak_total_mb']:.1f} MB)",
            f"answers {r['statuses']}; seconds per upload p50 {r['upload_seconds']['p50']}, "
            f"max {r['upload_seconds']['max']}",
            f"target: peak < {r['target_mb']:.0f} MB: {'met' if r['target_met'] else 'NOT met'}",
        ]
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", type=int, default=6300, help="picture side in pixels")
    p.add_argument("--clients", type=int, default=8, help="uploads at once")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    results = run(args)
    return publish(results, table(results), args.out)


if __name__ == "__main__":
    main()
