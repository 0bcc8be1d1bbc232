"""``lookalike replica build | serve`` through the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import requests
from click.testing import CliRunner

from lookalike_cli.main import child_command, cli
from services.replica.collection import Collection

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str):
    return CliRunner().invoke(cli, ["replica", *args], catch_exceptions=False)


def test_build_scale_demo_and_folder(tmp_path: Path, demo_dir: Path) -> None:
    result = _run("build", "--scale", "300", "--seed", "2", "--out", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    assert "300 images (scale)" in result.output
    assert len(Collection.load(tmp_path / "s")) == 300
    # The demo build is cached: the session's demo directory is reused as it is.
    result = _run("build", "--demo", "--out", str(demo_dir))
    assert result.exit_code == 0
    assert "234 images (demo), 20 near-duplicate families" in result.output
    src = tmp_path / "pics"
    src.mkdir()
    (src / "bad.jpg").write_bytes(b"nope")
    result = _run("build", str(src), "--out", str(tmp_path / "f"))
    assert result.exit_code == 1 and "bad.jpg is not a readable image" in result.output
    result = _run("build", "--demo", "--scale", "3", "--out", str(tmp_path / "g"))
    assert result.exit_code == 2 and "exactly one of SRC, --demo or --scale" in result.output


def test_build_with_test_documents(tmp_path: Path, replica_spec_dir: Path) -> None:
    env = {"LOOKALIKE_CATALOGUE_SPEC_DIR": str(replica_spec_dir)}
    result = CliRunner(env=env).invoke(
        cli, ["replica", "build", "--with-test-documents", "--out", str(tmp_path / "d")]
    )
    assert result.exit_code == 0, result.output
    coll = Collection.load(tmp_path / "d")
    assert "hqnskj6m" in coll and len(coll) == 54


def test_serve_prints_the_crawler_environment(scale_dir: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        child_command(
            "replica", "serve", "--collection", str(scale_dir), "--faults", "seed=1,429=0"
        ),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("Ctrl-C"):
                break
        exports = dict(
            line.strip().removeprefix("export ").split("=", 1)
            for line in lines
            if line.strip().startswith("export ")
        )
        catalogue = exports["LOOKALIKE_CATALOGUE_URL"]
        host = exports["LOOKALIKE_IMAGE_HOSTS"]
        assert catalogue == f"http://{host}/catalogue/v2"
        image_id = Collection.load(scale_dir).ids[0]
        body = requests.get(f"{catalogue}/images/{image_id}", timeout=10).json()
        assert body["thumbnail"]["url"] == f"http://{host}/image/L{image_id.upper()}/info.json"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 0
