"""``lookalike evaluate``: how well near-duplicates are found on your own labelled pictures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lookalike_cli.common import settings, user_errors


def _edits(value: str | None) -> tuple[str, ...]:
    from services.replica.variants import EDITS

    if value is None or value == "all":
        return EDITS
    chosen = tuple(e.strip() for e in value.split(",") if e.strip())
    unknown = [e for e in chosen if e not in EDITS]
    if unknown:
        raise click.BadParameter(
            f"unknown edits {', '.join(unknown)}; choose from {', '.join(EDITS)} (or 'all')",
            param_hint="--edits",
        )
    return chosen


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--truth",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help='JSON {"families": [[file, file, ...], ...]} (paths relative '
    "to the file) instead of, or besides, sub-folders as families.",
)
@click.option(
    "--plant",
    is_flag=True,
    help="Also plant edited copies of each family's first picture (see --edits).",
)
@click.option(
    "--edits",
    default=None,
    metavar="EDIT,EDIT",
    help="The edits --plant makes (default: all: resize, jpeg, noise, brightness, "
    "grayscale, crop_center, crop_side, border, rotate, mirror, text).",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the figures as JSON to this file.",
)
@user_errors()
def evaluate(
    folder: Path, truth: Path | None, plant: bool, edits: str | None, json_out: Path | None
) -> None:
    """Measure near-duplicate precision and recall on FOLDER's labelled pictures.

    Families are FOLDER's sub-folders (every picture in one is a copy of the others; a
    picture directly in FOLDER is a family of its own) or the --truth file. Each picture is
    hashed (and, with embeddings on, embedded) as the crawler treats a catalogue thumbnail,
    its view compared with others' where that can change a verdict (unless
    LOOKALIKE_VIEW_STORE_MB is 0), and the indexer's near-duplicate pipeline runs with the
    current settings: pair
    precision, recall per edit and per family, and dup_group precision are printed."""
    from tqdm import tqdm

    from lookalike.embedding.embedder import shared_embedder
    from lookalike.embedding.model import EmbeddingError
    from services.indexer.evaluation import (
        EvaluationError,
        examine_pictures,
        families_from_folder,
        format_scores,
        labelled_pictures,
        local_evidence,
        score,
        without_identical,
    )
    from services.indexer.verify import EMBEDDING_CANDIDATES, VerifyConfig

    config = settings()
    try:
        families = families_from_folder(folder, truth)
        items = labelled_pictures(families, _edits(edits) if plant else ())
        embedder = shared_embedder(config)
        with tqdm(
            total=len(items),
            unit="img",
            file=sys.stderr,
            dynamic_ncols=True,
            desc="hashing" if embedder is None else "hashing and embedding",
        ) as bar:
            seen = examine_pictures(items, embedder, progress=bar.update)
        items, seen, identical = without_identical(items, seen)
        for kept, left_out in identical:
            click.echo(
                f"left out family {left_out}: its first picture has exactly the pixels of "
                f"family {kept}'s (one picture labelled as two families; its copies would "
                "count as false pairs)",
                err=True,
            )
        scores = score(
            items,
            seen.table,
            config=VerifyConfig.from_settings(config),
            vectors=seen.vectors,
            knn=EMBEDDING_CANDIDATES,
            local=local_evidence(items) if config.view_store_mb > 0 else None,
        )
    except (EvaluationError, EmbeddingError) as exc:
        raise click.ClickException(str(exc)) from exc
    evidence = "hashes" if embedder is None else f"hashes and embeddings ({embedder.version})"
    if config.view_store_mb > 0:
        evidence += " and local features"
    click.echo(format_scores(scores, title=f"near-duplicates in {folder}, by {evidence}"))
    if json_out is not None:
        json_out.write_text(json.dumps(scores.as_json(), indent=1) + "\n")
        click.echo(f"figures written to {json_out}")


COMMANDS = [evaluate]
