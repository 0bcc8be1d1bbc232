"""``lookalike indexer | duplicates | search``: the Annoy index sidecar and its queries."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click

from lookalike.hashing import HASH_KINDS
from lookalike_cli.common import IMAGE_ID, LazyGraph, settings, user_errors

_KIND = click.Choice(HASH_KINDS)


# The index's errors that say what to fix (see common.user_errors: named, not imported).
_ERRORS = (
    "services.indexer.generations:IndexerBusy",
    "services.indexer.generations:NoGeneration",
    "services.indexer.reader:UnknownImage",
    "services.indexer.bits:BadHash",
    "lookalike.hashing:ImageDecodeError",
    "services.indexer.vecread:NoVector",
)


def _load_hash_file(path: Path) -> Any:
    """An .npz of ``ids`` plus one uint64 array per hash kind (and optional ``hashed_at``)."""
    import numpy as np

    from services.indexer.table import HashTable

    try:
        data = np.load(path)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path} is not a readable .npz hash file ({exc})") from exc
    if "ids" not in data:
        raise click.BadParameter(f"{path} has no 'ids' array")
    kinds = [k for k in HASH_KINDS if k in data]
    if not kinds:
        raise click.BadParameter(f"{path} has none of the hash arrays {', '.join(HASH_KINDS)}")
    try:
        return HashTable.from_arrays(
            data["ids"].astype(str),
            {k: data[k] for k in kinds},
            data.get("hashed_at"),
        )
    except ValueError as exc:
        raise click.BadParameter(f"{path}: {exc}") from exc


@click.command()
@click.option("--once", is_flag=True, help="Build one generation now and exit.")
@click.option(
    "--request",
    "request",
    is_flag=True,
    help="Ask the running indexer to rebuild at its next poll, and exit.",
)
@click.option(
    "--trees",
    type=click.IntRange(1, 500),
    default=None,
    help="Annoy trees per index (default: LOOKALIKE_INDEX_TREES).",
)
@click.option(
    "--poll",
    type=click.FloatRange(0.1),
    default=5.0,
    show_default=True,
    help="Seconds between checks for new hashes.",
)
@click.option(
    "--index-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Index folder (default: <state>/index).",
)
@click.option(
    "--from-hashes",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Build from an .npz hash file instead of the graph (implies "
    "--once; no near-duplicates are written).",
)
@click.option("-v", "--verbose", is_flag=True)
@user_errors(*_ERRORS)
def indexer(
    once: bool,
    request: bool,
    trees: int | None,
    poll: float,
    index_dir: Path | None,
    from_hashes: Path | None,
    verbose: bool,
) -> None:
    """Keep the near-duplicate index fresh: rebuild when enough new hashes arrive or the
    rebuild period passes (or with --once, now)."""
    from services.indexer import generations as gens
    from services.indexer.service import IndexerConfig

    logging.basicConfig(
        level=logging.INFO if verbose or not once else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    s = settings()
    config = IndexerConfig.from_settings(s, index_dir=index_dir, trees=trees, poll_s=poll)
    if request:
        gens.request_rebuild(config.index_dir)
        click.echo(f"rebuild requested in {config.index_dir}")
        return
    if from_hashes is not None:
        from services.indexer.build import build_generation

        table = _load_hash_file(from_hashes)
        result = build_generation(
            config.index_dir,
            table,
            trees=config.trees,
            extra_meta={"reason": f"from {from_hashes.name}"},
        )
        click.echo(f"{result.path.name}: {result.images} images in {result.seconds:.1f}s")
        return

    from lookalike.graph import GraphStore
    from services.indexer.service import open_indexer

    with GraphStore.connect(s) as store:
        worker = open_indexer(store, s, index_dir=index_dir, trees=trees, poll_s=poll)
        if once:
            report = worker.build_once("lookalike indexer --once")
            click.echo(
                f"{report.build.path.name}: {report.build.images} images, "
                f"{report.pairs} near-duplicate pairs in {report.groups} groups"
                + (
                    f"; {report.vectors} embedded images, {report.missing} vectors missing, "
                    f"{report.reembed} handed back to embed"
                    if config.model
                    else ""
                )
                + (
                    f"; {report.local_deferred} pairs left to compare on their views "
                    "(run again, or let the indexer's loop go on)"
                    if report.local_deferred
                    else ""
                )
                + f" ({report.seconds:.1f}s)"
            )
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        click.echo(f"indexer watching the graph; index in {config.index_dir}")
        worker.run(stop)


def _reader(s: Any, store: Any) -> Any:
    from services.indexer.graph_io import open_reader

    reader = open_reader(s, store)
    if reader.generation is None:
        click.echo(
            f"note: no index in {s.index_dir} yet (run `lookalike indexer --once`); "
            "scanning every hash in the graph instead",
            err=True,
        )
    return reader


def _titles(graph: LazyGraph, reader: Any, ids: list[str]) -> dict[str, str]:
    """The titles of ``ids``: from the index generation when they are current there (the
    workers wrote nothing since it was built), else (and for ids it lacks) from the graph."""
    titles = reader.titles_of(ids) if ids else {}
    missing = [i for i in dict.fromkeys(ids) if i not in titles]
    if missing:
        images = graph.get_images(missing)
        titles.update({i: (images.get(i, {}).get("title") or "") for i in missing})
    return {i: titles[i] for i in ids}


def _clip(text: str, width: int = 50) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_ranked(matches: list[Any], titles: dict[str, str]) -> None:
    """The one ranking as a table: near-duplicate or not, the evidence, why."""
    click.echo(
        f"{'#':>3}  {'id':<16} {'dup':<3} {'weighted':>8} {'phash':>5} {'dhash':>5} "
        f"{'whash':>5} {'ahash':>5} {'cosine':>6}  {'mirror':<6}  title"
    )
    for rank, m in enumerate(matches, 1):
        cells = " ".join(
            f"{m.distances.get(x, '-'):>5}" for x in ("phash", "dhash", "whash", "ahash")
        )
        cosine = "-" if m.cosine is None else f"{m.cosine:.3f}"
        click.echo(
            f"{rank:>3}  {m.id:<16} {'yes' if m.match else 'no':<3} {m.weighted:>8.1f} "
            f"{cells} {cosine:>6}  {'yes' if m.mirrored else '':<6}  "
            f"{_clip(titles.get(m.id, ''))}"
        )
    if matches and matches[0].match:
        click.echo(f"why #1: {'; '.join(matches[0].reasons)}")


@click.command()
@click.argument("image_id", type=IMAGE_ID)
@click.option(
    "--kind",
    type=_KIND,
    default=None,
    help="Rank by this hash kind alone (default: one ranking across kinds, "
    "verified near-duplicates first).",
)
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option(
    "--max-distance",
    type=click.IntRange(0, 64),
    default=10,
    show_default=True,
    help="With --kind: only matches this close.",
)
@click.option("--no-mirror", is_flag=True, help="With --kind: no mirrored copies.")
@user_errors(*_ERRORS)
def duplicates(image_id: str, kind: str | None, k: int, max_distance: int, no_mirror: bool) -> None:
    """Print the near-duplicates of the image IMAGE_ID (best first)."""
    s = settings()
    with LazyGraph(s) as store:
        reader = _reader(s, store)
        if kind is None:
            ranked = reader.rank_id(image_id, k=k)
            titles = _titles(store, reader, [m.id for m in ranked])
            click.echo(f"images like {image_id} (near-duplicates first):")
            _print_ranked(ranked, titles)
            return
        matches = reader.nearest(
            kind, image_id=image_id, k=k, max_distance=max_distance, mirror=not no_mirror
        )
        titles = _titles(store, reader, [m.id for m in matches])
    if not matches:
        click.echo(f"no image within {max_distance} bits of {image_id} ({kind})")
        return
    click.echo(f"near-duplicates of {image_id} by {kind} (max distance {max_distance}):")
    click.echo(f"{'#':>3}  {'id':<16} {'dist':>4}  {'mirror':<6}  title")
    for rank, m in enumerate(matches, 1):
        click.echo(
            f"{rank:>3}  {m.id:<16} {m.distance:>4}  {'yes' if m.mirrored else '':<6}  "
            f"{_clip(titles.get(m.id, ''))}"
        )


@click.command()
@click.argument("image_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--no-mirror", is_flag=True, help="Do not also search the mirrored picture.")
@user_errors(*_ERRORS)
def search(image_file: Path, k: int, no_mirror: bool) -> None:
    """Print the stored images that look most like IMAGE_FILE: one ranking across hash kinds
    and the learned embedding, verified near-duplicates first."""
    from lookalike.hashing import decode_image

    s = settings()
    data = image_file.read_bytes()
    if len(data) > s.api_max_upload_bytes:
        raise click.BadParameter(
            f"{image_file} is {len(data)} bytes, over the limit of {s.api_max_upload_bytes}"
        )
    # Hashed at the size the API hashes uploads at, so both find the same images.
    picture = decode_image(data, max_pixels=s.api_max_upload_pixels, max_side=s.thumbnail_size)
    with LazyGraph(s) as store:
        reader = _reader(s, store)
        _, ranked = reader.rank_image(
            picture, k=k, mirror=not no_mirror, vector=_embedding(s, reader, picture)
        )
        titles = _titles(store, reader, [m.id for m in ranked])
    if not ranked:
        click.echo("no matches")
        return
    click.echo(f"images like {image_file.name}:")
    _print_ranked(ranked, titles)


def _embedding(s: Any, reader: Any, picture: Any) -> Any:
    """The picture's embedding when the index holds vectors to compare it with (the model is
    not even loaded otherwise), else None."""
    from lookalike.vectors import ModelUnavailable, embedder

    if not s.embeddings or not reader.any_vectors() or not reader.vectors().count:
        return None
    model = embedder(s)
    if model is None or isinstance(model, ModelUnavailable):
        click.echo("note: the embedding model does not load; ranking by hashes alone", err=True)
        return None
    return model.embed(picture)


def _score(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


@click.command()
@click.argument("image_id")
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option(
    "--refined", is_flag=True, help="Compare the graph-refined embeddings instead of the raw ones."
)
@user_errors(*_ERRORS)
def lookalikes(image_id: str, k: int, refined: bool) -> None:
    """Print the images that look most like IMAGE_ID by embedding cosine (best first)."""
    s = settings()
    with LazyGraph(s) as store:
        reader = _reader(s, store)
        matches = reader.lookalikes(image_id, k=k, refined=refined)
        titles = _titles(store, reader, [m.id for m in matches])
    kind = "refined" if refined else "raw"
    click.echo(f"lookalikes of {image_id} by {kind} embedding cosine:")
    click.echo(f"{'#':>3}  {'id':<16} {'cosine':>7}  title")
    for rank, m in enumerate(matches, 1):
        mark = "" if m.refined == refined else "*"
        click.echo(f"{rank:>3}  {m.id:<16} {m.score:>7.3f}{mark:<1} {_clip(titles.get(m.id, ''))}")
    if any(m.refined != refined for m in matches):
        click.echo("* embedded since the last index build: compared by its raw vector")


@click.command()
@click.option(
    "--section",
    type=click.Choice(["least_supported", "edges", "unlisted"]),
    default="least_supported",
    show_default=True,
    help="least_supported: SIMILAR_TO edges the embeddings support least; edges: "
    "every edge; unlisted: strong lookalikes the catalogue does not list.",
)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@user_errors(*_ERRORS)
def audit(section: str, offset: int, limit: int) -> None:
    """Audit the catalogue's similar lists with the embeddings (of the last index build)."""
    from services.indexer import audit as audit_mod

    s = settings()
    with LazyGraph(s) as store:
        reader = _reader(s, store)
        view = reader.vectors()
        found = view.gen.audit() if view.gen is not None else None
        if found is None:
            raise click.ClickException(
                "no audit yet: it is made by the indexer from embedded images (crawl with "
                "embeddings on, then `lookalike indexer --once`)"
            )
        total, items = audit_mod.page(found, section, offset, limit)
        titles = _titles(
            store,
            reader,
            [x for i in items for x in (i.get("source") or i["a"], i.get("target") or i["b"])],
        )
    info = audit_mod.summary(found)
    click.echo(
        f"{info['edges']} SIMILAR_TO edges ({info['with_vectors']} with both vectors, "
        f"{info['reciprocal']} reciprocal); raw cosine {info['cos_raw']}; "
        f"{info['unlisted']} strong lookalikes (cosine >= {info['strong']}) unlisted"
    )
    click.echo(f"{section}: {offset + 1}-{offset + len(items)} of {total}")
    if section == "unlisted":
        click.echo(f"{'a':<16} {'b':<16} {'raw':>6} {'refined':>7}  titles")
        for i in items:
            click.echo(
                f"{i['a']:<16} {i['b']:<16} {_score(i['cos_raw']):>6} "
                f"{_score(i['cos_refined']):>7}  {_clip(titles.get(i['a'], ''), 30)} | "
                f"{_clip(titles.get(i['b'], ''), 30)}"
            )
        return
    click.echo(
        f"{'source':<16} {'target':<16} {'rank':>4} {'raw':>6} {'refined':>7} "
        f"{'phash':>5} {'colour':>6} {'recip':<5}  titles"
    )
    for i in items:
        phash = i["hash_distance"].get("phash")
        colour = i["colour_distance"]
        click.echo(
            f"{i['source']:<16} {i['target']:<16} {i['rank']:>4} {_score(i['cos_raw']):>6} "
            f"{_score(i['cos_refined']):>7} {'-' if phash is None else phash:>5} "
            f"{'-' if colour is None else round(colour):>6} {'yes' if i['reciprocal'] else '':<5}"
            f"  {_clip(titles.get(i['source'], ''), 30)} | {_clip(titles.get(i['target'], ''), 30)}"
        )


COMMANDS = [indexer, duplicates, search, lookalikes, audit]
