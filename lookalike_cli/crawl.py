"""``lookalike crawl | crawls | cancel | worker | beat``: run and watch crawls."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

import click

from lookalike.errors import CatalogueError
from lookalike.settings import Settings
from lookalike_cli.common import CRAWL_ID, IMAGE_ID, settings, user_errors


def _progress_line(s: dict[str, Any]) -> str:
    c = s["counts"]
    queued = " ".join(f"d{d}:{n}" for d, n in s["queued"].items() if n)
    failed = ", ".join(f"{k} {v}" for k, v in sorted(c["failed"].items())) or "none"
    return (
        f"level {s['level']}/{s['depth']}  queued [{queued or '-'}]  hashed {c['hashed']}"
        f" (+{c['hash_skipped']} unchanged, {s['hash_queue']} waiting)  edges {c['edges']}"
        f"  failed: {failed}"
    )


@click.command()
@click.option(
    "--seed",
    "seeds",
    multiple=True,
    type=IMAGE_ID,
    help="Catalogue image id to start from (repeatable).",
)
@click.option(
    "--seeds-file",
    type=click.File("r"),
    default=None,
    help="A file of image ids to start from, one per line ('#' starts a comment; "
    "'-' reads standard input).",
)
@click.option(
    "--all",
    "whole",
    is_flag=True,
    help="Start from every image of the catalogue: the ids of its bulk snapshot "
    "(--snapshot) or, without one, of its list pages (the first 10,000 only).",
)
@click.option(
    "--snapshot",
    default=None,
    help="With --all: the snapshot's URL or file (default LOOKALIKE_DISCOVER_SOURCE).",
)
@click.option(
    "--depth",
    type=int,
    default=None,
    help="How many hops from the seeds to expand.  [default: 2; 0 with --all, where "
    "every image is a seed]",
)
@click.option(
    "--max-images",
    type=int,
    default=None,
    help="Stop expanding after this many images (per crawl).",
)
@click.option("--detach", is_flag=True, help="Queue the crawl and return at once.")
@user_errors(ValueError, CatalogueError, OSError)
def crawl(
    seeds: tuple[str, ...],
    seeds_file: IO[str] | None,
    whole: bool,
    snapshot: str | None,
    depth: int | None,
    max_images: int | None,
    detach: bool,
) -> None:
    """Crawl the catalogue breadth-first from SEEDs (needs running workers: `lookalike worker`).

    Shows a live progress bar until the crawl ends. Ctrl-C cancels the crawl. More seeds than
    one crawl takes (LOOKALIKE_MAX_SEEDS) run as consecutive crawls of that many each.
    """
    from workers import control

    s = settings()
    chosen = _seeds(s, seeds, seeds_file, whole, snapshot)
    depth = (0 if whole else 2) if depth is None else depth
    parts = control.in_parts(chosen, s.max_seeds)
    for part in parts:  # all checked before anything is queued
        control.validate_request(s, part, depth, max_images)
    failed = False
    for number, part in enumerate(parts, 1):
        record = control.start_crawl(s, part, depth, max_images)
        crawl_id = record["id"]
        of = f" (part {number} of {len(parts)})" if len(parts) > 1 else ""
        click.echo(
            f"crawl {crawl_id}{of}: {len(part)} seed(s), depth {depth}"
            + (f", at most {max_images} images" if max_images else "")
        )
        if detach:
            click.echo(f"follow it with `lookalike crawls {crawl_id}`")
            continue
        failed = follow(s, crawl_id)["status"] != "done" or failed
    if failed:
        sys.exit(1)


def _seeds(
    s: Settings,
    seeds: tuple[str, ...],
    seeds_file: IO[str] | None,
    whole: bool,
    snapshot: str | None,
) -> list[str]:
    """The seeds the options name, in order, without duplicates; a clear error when none."""
    from workers import control

    chosen = list(seeds)
    if seeds_file is not None:
        chosen += control.parse_seed_lines(seeds_file, name=seeds_file.name)
    if whole:
        from lookalike.catalogue import CatalogueClient

        source = snapshot or s.discover_source
        with CatalogueClient.connect(s) as client:
            chosen += _read_ids(
                control.collection_ids(client, source), source or f"{s.catalogue_url}/images"
            )
            if client.stats["list_window_truncated"]:
                click.echo(
                    "warning: the catalogue lists only its first 10,000 images; to "
                    "reach every image, name its snapshot with --snapshot",
                    err=True,
                )
    elif snapshot:
        raise ValueError("--snapshot goes with --all")
    if not chosen:
        raise ValueError("no seeds: give --seed ID, --seeds-file FILE or --all")
    return list(dict.fromkeys(chosen))


def _read_ids(ids: Iterator[str], where: str) -> list[str]:
    from tqdm import tqdm

    with tqdm(
        ids, unit="id", desc=f"reading ids from {where}", file=sys.stderr, dynamic_ncols=True
    ) as bar:
        return list(bar)


def follow(s: Settings, crawl_id: str) -> dict[str, Any]:
    """Show a live progress bar until the crawl ends; print its summary. Ctrl-C cancels."""
    from tqdm import tqdm

    from workers import control

    started = time.monotonic()
    first = control.get_crawl(s, crawl_id) or {"seeds": []}
    bar = tqdm(
        total=len(first["seeds"]),
        unit="img",
        dynamic_ncols=True,
        file=sys.stderr,
        desc=f"crawl {crawl_id}",
    )

    def show(summary: dict[str, Any]) -> None:
        done = summary["counts"]["fetched"]
        bar.total = max(bar.total or 0, done + sum(summary["queued"].values()))
        bar.n = done
        bar.set_postfix_str(_progress_line(summary), refresh=False)
        bar.refresh()

    try:
        final = control.wait_for(s, crawl_id, on_progress=show)
    except KeyboardInterrupt:
        control.cancel_crawl(s, crawl_id)
        bar.close()
        raise click.ClickException(f"crawl {crawl_id} cancelled") from None
    bar.close()
    elapsed = time.monotonic() - started
    c = final["counts"]
    click.echo(
        f"crawl {crawl_id} {final['status']} in {elapsed:.1f}s: {c['fetched']} images fetched "
        f"({c['fetched'] / max(elapsed, 1e-9):.1f}/s), {c['nodes']} stored, {c['hashed']} hashed,"
        f" {c['edges']} edges, depth reached {c['depth_reached']}, "
        f"{c['failed_total']} failures"
    )
    for reason, n in sorted(c["failed"].items()):
        click.echo(f"  failed {reason}: {n}")
    return final


@click.command()
@click.argument("crawl_id", required=False, type=CRAWL_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--failures", is_flag=True, help="With CRAWL_ID: list each failed image and why.")
@user_errors(ValueError)
def crawls(crawl_id: str | None, as_json: bool, failures: bool) -> None:
    """List crawls, or show one."""
    from workers import control

    s = settings()
    if crawl_id:
        record = control.get_crawl(s, crawl_id)
        if record is None:
            raise click.ClickException(f"no crawl {crawl_id!r}; `lookalike crawls` lists them")
        if failures:
            record["failures"] = control.crawl_failures(s, crawl_id)
        click.echo(json.dumps(record, indent=2) if as_json else _describe(record))
        if failures and not as_json:
            for image_id, why in sorted(record["failures"].items()):
                click.echo(f"  {image_id}: {why}")
        return
    records = control.list_crawls(s)
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("no crawls yet: start one with `lookalike crawl --seed ID --depth 2`")
    for record in records:
        click.echo(_describe(record))


def _describe(r: dict[str, Any]) -> str:
    c = r["counts"]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"] / 1000))
    return (
        f"{r['id']}  {r['status']:9}  {when}  seeds {','.join(r['seeds'][:3])}"
        f"{'…' if len(r['seeds']) > 3 else ''}  depth {r['depth']}  fetched {c['fetched']}"
        f"  hashed {c['hashed']}  edges {c['edges']}  failed {c['failed_total']}"
    )


@click.command()
@click.argument("crawl_id")
@user_errors(ValueError)
def cancel(crawl_id: str) -> None:
    """Cancel a running crawl (images already stored stay)."""
    from workers import control

    record = control.cancel_crawl(settings(), crawl_id)
    if record is None:
        raise click.ClickException(f"no crawl {crawl_id!r}; `lookalike crawls` lists them")
    click.echo(f"crawl {crawl_id} is {record['status']}")


@click.command()
@click.option("--concurrency", "-c", type=int, default=2, show_default=True)
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo", "threads"]),
    default="prefork",
    show_default=True,
)
@click.option("--beat", is_flag=True, help="Also run the continuous-crawl schedule in this worker.")
@click.option("--loglevel", default="WARNING", show_default=True)
@user_errors()
def worker(concurrency: int, pool: str, beat: bool, loglevel: str) -> None:
    """Run a Celery worker for crawls (start as many as you like, on any machine)."""
    from workers.app import app, worker_argv

    settings().redis()  # fail now, clearly, if there is no Redis to take tasks from
    argv = worker_argv(pool=pool, concurrency=concurrency, loglevel=loglevel)
    if beat:
        argv += ["--beat", "--schedule", str(settings().state_dir / "celerybeat-schedule")]
    app.worker_main(argv)


@click.command()
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run the continuous-crawl schedule: re-fetch stale images, discover new ones."""
    from workers.app import app

    app.start(
        [
            "beat",
            "--loglevel",
            loglevel,
            "--schedule",
            str(settings().state_dir / "celerybeat-schedule"),
        ]
    )


COMMANDS = [crawl, crawls, cancel, worker, beat]
