"""What ``pip install .`` installs (and the Docker image, from the same wheel): every module,
every Cypher statement of ``cypher/``, every Lua script and the report's templates, found from
the installed copy alone.

A real wheel is built from a copy of the project's files (so the checkout stays clean) and
installed with pip into a folder of its own; a Python without site-packages and outside the
checkout then loads every statement and script from there, and renders the report's page
from its templates (with only Jinja2 beside it).
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

import jinja2
import markupsafe
import pytest
import redis

from lookalike import ratelimit
from workers import frontier

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
# What the packages hold that the installed code reads: modules and data files. Notes for
# readers of the source (README.md) stay out of the wheel.
SHIPPED_SUFFIXES = {".py", ".cypher", ".sql", ".lua", ".html", ".css", ".js"}


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
    # the compiled scan is an optional extension: only this says a wheel built with a C
    # compiler at hand really carries it
    compiled = [n for n in carried if n.startswith("services/indexer/_popscan.")]
    assert any(n.endswith((".so", ".pyd")) for n in compiled), sorted(carried)[:5]


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
from services.api.report import render, view

def names(package, suffix):
    return sorted(p.name[:-len(suffix)] for p in package.iterdir() if p.name.endswith(suffix))

statements = names(files("lookalike_cypher"), ".cypher")
lua = {pkg: names(files(pkg) / "lua", ".lua") for pkg in ("lookalike", "workers")}
texts = {n: cypher.load(n) for n in statements}
texts.update({f"{pkg}/{n}": redis_scripts.source(pkg, n) for pkg, ns in lua.items() for n in ns})
templates = render.environment().list_templates()
texts.update({t: render.environment().loader.get_source(render.environment(), t)[0]
              for t in templates})
page = render.render(view.Page(
    generated="now", collection=[("images", "<3>")], crawl=view.crawl(None, None), metrics=None,
    seed=None, neighborhood=None, dup_groups=[], audit=None))
print(json.dumps({"origin": lookalike_cypher.__file__, "statements": statements, "lua": lua,
                  "templates": templates,
                  "template_origin": render.environment().get_template(render.PAGE).filename,
                  "page": page, "empty": [n for n, text in texts.items() if not text.strip()]}))
"""
    # -S: no site-packages, so neither the checkout's editable install nor anything but the
    # installed copy (PYTHONPATH) can answer; the working folder is outside the checkout.
    # The report needs Jinja2 (and MarkupSafe): only they are put beside the installed copy.
    deps = tmp_path / "deps"
    deps.mkdir()
    for module in (jinja2, markupsafe):
        folder = Path(module.__file__).parent
        (deps / folder.name).symlink_to(folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), str(deps)])
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
    shipped = ROOT / "services" / "api" / "report" / "templates"
    assert found["templates"] == sorted(p.name for p in shipped.iterdir() if p.is_file())
    assert Path(found["template_origin"]).is_relative_to(target)
    assert "<h2>Collection</h2>" in found["page"] and "<td>&lt;3&gt;</td>" in found["page"]
    assert "max-width:1100px" in found["page"]  # the style sheet, included
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
