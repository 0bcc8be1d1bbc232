"""What ``pip install .`` installs (and the Docker image, from the same wheel): every module,
every Cypher statement of ``cypher/`` and every Lua script, found from the installed copy alone.

A real wheel is built from a copy of the project's files (so the checkout stays clean) and
installed with pip into a folder of its own; a Python without site-packages and outside the
checkout then loads every statement and script from there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import redis

from lookalike import ratelimit
from workers import frontier

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
# What the packages hold that the installed code reads: modules and data files. Notes for
# readers of the source (README.md) stay out of the wheel.
SHIPPED_SUFFIXES = {".py", ".cypher", ".lua", ".html", ".css", ".js"}


def _folders() -> dict[str, Path]:
    """Each top-level package and the folder it is installed from."""
    tops = {name.split(".")[0] for name in SETUPTOOLS["packages"]}
    mapped = SETUPTOOLS.get("package-dir", {})
    return {top: ROOT / mapped.get(top, top) for top in sorted(tops)}


def _shipped_files() -> dict[str, Path]:
    """The wheel path each module and data file of the source tree must have."""
    out = {}
    for top, folder in _folders().items():
        for path in folder.rglob("*"):
            if (
                path.is_file()
                and path.suffix in SHIPPED_SUFFIXES
                and "__pycache__" not in path.parts
            ):
                out[f"{top}/{path.relative_to(folder).as_posix()}"] = path
    return out


def _names(folder: Path, suffix: str) -> list[str]:
    return sorted(p.stem for p in folder.glob(f"*{suffix}"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    for folder in {f.name for f in _folders().values()}:
        shutil.copytree(
            ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (built,) = out.glob("lookalike-*.whl")
    return built


def test_the_wheel_carries_every_module_and_data_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        carried = set(zf.namelist())
    expected = _shipped_files()
    assert "lookalike_cypher/counts.cypher" in expected
    assert "workers/lua/complete_fetch.lua" in expected
    missing = sorted(set(expected) - carried)
    assert not missing, f"the wheel leaves out {missing[:10]} (pyproject.toml's packages?)"


def test_an_installed_copy_loads_every_statement_and_script(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    code = """
import json
from importlib.resources import files
import lookalike_cypher
from lookalike import cypher, redis_scripts

def names(package, suffix):
    return sorted(p.name[:-len(suffix)] for p in package.iterdir() if p.name.endswith(suffix))

statements = names(files("lookalike_cypher"), ".cypher")
lua = {pkg: names(files(pkg) / "lua", ".lua") for pkg in ("lookalike", "workers")}
texts = {n: cypher.load(n) for n in statements}
texts.update({f"{pkg}/{n}": redis_scripts.source(pkg, n) for pkg, ns in lua.items() for n in ns})
print(json.dumps({"origin": lookalike_cypher.__file__, "statements": statements, "lua": lua,
                  "empty": [n for n, text in texts.items() if not text.strip()]}))
"""
    # -S: no site-packages, so neither the checkout's editable install nor anything but the
    # installed copy (PYTHONPATH) can answer; the working folder is outside the checkout.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")}
    env["PYTHONPATH"] = str(target)
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert Path(found["origin"]).is_relative_to(target)
    assert found["statements"] == _names(ROOT / "cypher", ".cypher")
    assert found["lua"] == {
        "lookalike": _names(ROOT / "lookalike" / "lua", ".lua"),
        "workers": _names(ROOT / "workers" / "lua", ".lua"),
    }
    assert not found["empty"]


def test_every_script_compiles_in_redis(redis_url: str) -> None:
    """The scripts as the code composes them (shared functions joined in front) are valid Lua:
    Redis compiles each on SCRIPT LOAD."""
    scripts = [
        frontier._COMPLETE_FETCH,
        frontier._COMPLETE_HASH,
        frontier._MAYBE_FINISH,
        frontier._CLAIM,
        frontier._START_FETCH,
        ratelimit._ACQUIRE_LUA,
        ratelimit._PAUSE_LUA,
        ratelimit._PAUSED_FOR_LUA,
    ]
    client = redis.Redis.from_url(redis_url)
    try:
        for script in scripts:
            assert len(client.script_load(script)) == 40
    finally:
        client.close()
