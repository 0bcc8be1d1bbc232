"""``lookalike model install | info``: the learned embedding model, converted once per machine."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lookalike.embedding.model import (
    EmbeddingError,
    ModelInfo,
    install_model,
    installed_path,
    model_info,
)
from lookalike_cli.common import settings, user_errors


def _describe(info: ModelInfo, path: Path, state: str) -> str:
    return (
        f"model    {info.name} ({info.dim}-d features), licence {info.license}\n"
        f"weights  {info.source}, sha256 {info.weights_sha256[:16]}…\n"
        f"version  {info.version}\n"
        f"file     {path} ({state})"
    )


@click.group()
def model() -> None:
    """The learned embedding model (EfficientNet-Lite0, run by onnxruntime)."""


@model.command()
@click.option("--force", is_flag=True, help="Convert again even if the file is there.")
@click.option("--quiet", is_flag=True, help="Say nothing unless something was converted.")
@user_errors(EmbeddingError)
def install(force: bool, quiet: bool) -> None:
    """Convert the model from its weights package into LOOKALIKE_MODEL_DIR (once)."""
    s = settings()
    if not s.embeddings:
        if not quiet:
            click.echo("embeddings are turned off (LOOKALIKE_EMBEDDINGS=0): nothing to install")
        return
    info, path, converted = install_model(s.model_dir, force=force)
    if converted or not quiet:
        click.echo(_describe(info, path, "converted now" if converted else "already installed"))


@model.command()
@click.option("--json", "as_json", is_flag=True, help="Print the model's record as JSON.")
@user_errors(EmbeddingError)
def info(as_json: bool) -> None:
    """Which model embeds images, its licence and version, and where its file is."""
    s = settings()
    record = model_info()
    path = installed_path(s.model_dir, record)
    state = "installed" if path.is_file() else "not installed: run `lookalike model install`"
    if as_json:
        click.echo(
            json.dumps(
                {
                    **record.as_dict(),
                    "path": str(path),
                    "installed": path.is_file(),
                    "enabled": s.embeddings,
                },
                indent=2,
            )
        )
        return
    click.echo(_describe(record, path, state))
    if not s.embeddings:
        click.echo("embeddings are turned off (LOOKALIKE_EMBEDDINGS=0)")


COMMANDS = [model]
