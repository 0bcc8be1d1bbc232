"""``lookalike demo``: the main job, end to end on one machine.

Starts the embedded stack, builds and serves the replica's demo collection (public-domain Met
paintings with planted near-duplicates), runs real Celery workers that crawl it breadth-first
and hash every thumbnail, builds the Annoy index and its near-duplicate groups, analyses the
crawled graph with networkx, writes an HTML report, and serves the API over it.

Everything it starts is real and stays inspectable: the stack keeps running afterwards
(`lookalike status`, `lookalike down`), and with ``--serve`` the API and the replica stay up
until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import click

from lookalike_cli import children
from lookalike_cli.common import settings, user_errors


def _pick_seed(collection: Any) -> str:
    """A painting (not a planted variant or test document) with a full similar list."""
    variants = {
        v["id"] for f in (collection.ground_truth or {}).get("families", []) for v in f["variants"]
    }
    for image_id in collection.ids:
        if image_id not in variants and len(collection.similar_ids(image_id)) == 5:
            return str(image_id)
    return str(collection.ids[0])


@click.command()
@click.option("--seed", default=None, help="Image id to start from (default: a painting).")
@click.option("--depth", default=3, show_default=True, type=click.IntRange(0, 6))
@click.option(
    "--workers",
    "n_workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Concurrent crawl tasks (one worker process, prefork pool).",
)
@click.option(
    "--collection",
    type=click.Path(path_type=Path),
    default=None,
    help="A replica collection folder (default: build the demo collection).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="API port (0: any free port).",
)
@click.option(
    "--serve/--no-serve",
    default=None,
    help="Keep the API running until Ctrl-C (default: when run in a terminal).",
)
@user_errors(ValueError)
def demo(
    seed: str | None,
    depth: int,
    n_workers: int,
    collection: Path | None,
    port: int,
    serve: bool | None,
) -> None:
    """Crawl the demo collection, index, analyse, report and serve: the whole pipeline."""
    from lookalike import stack
    from lookalike.graph import GraphStore
    from lookalike_cli.crawl import follow
    from services.api.report.write import write_report
    from services.indexer.service import open_indexer
    from services.replica.builder import build_demo_collection
    from services.replica.collection import Collection
    from services.replica.server import run_replica
    from workers import control
    from workers.analysis import create_job, run_analysis

    s = settings()
    serve = sys.stdin.isatty() if serve is None else serve
    logs = s.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    click.secho("1/6 starting the embedded stack", bold=True)
    stack.up(s)
    with GraphStore.connect(s) as store:
        store.ensure_schema()

    click.secho("2/6 building the replica's demo collection", bold=True)
    if collection is None:
        (s.state_dir / "replica").mkdir(parents=True, exist_ok=True)
    collection_dir = collection or build_demo_collection(s.state_dir / "replica" / "demo")
    coll = Collection.load(collection_dir)
    seed = seed or _pick_seed(coll)
    families = len((coll.ground_truth or {}).get("families", []))
    click.echo(
        f"    {len(coll)} images ({families} planted near-duplicate families) in {collection_dir}"
    )

    with run_replica(coll) as replica:
        crawl_settings = s.replace(
            catalogue_url=replica.catalogue_url, image_hosts=(replica.image_host,)
        )
        env = {
            **os.environ,
            **replica.env(),
            "LOOKALIKE_STATE_DIR": str(s.state_dir),
            # The replica has no pages for people: its record of an image stands in.
            "LOOKALIKE_WORK_URL": f"{replica.catalogue_url}/images/{{id}}",
        }
        click.echo(f"    replica serving at {replica.catalogue_url}")

        click.secho(f"3/6 crawling from {seed} to depth {depth}", bold=True)
        worker = children.start(
            ["worker", "--concurrency", str(n_workers), "--pool", "prefork"],
            env,
            logs / "worker.log",
        )
        api: subprocess.Popen[bytes] | None = None
        try:
            record = control.start_crawl(crawl_settings, [seed], depth)
            final = follow(crawl_settings, record["id"])
            if final["status"] != "done":
                raise click.ClickException(
                    f"crawl {record['id']} ended {final['status']}; see {logs / 'worker.log'}"
                )

            click.secho("4/6 building the near-duplicate index", bold=True)
            with GraphStore.connect(s) as store:
                run = open_indexer(store, s).build_once("demo")
                click.echo(
                    f"    {run.build.images} hashed images indexed; {run.pairs} "
                    f"near-duplicate pairs in {run.groups} groups; {run.vectors} "
                    "embedded images, their lookalikes written (LOOKS_LIKE)"
                )

                click.secho("5/6 analysing the crawled graph and writing the report", bold=True)
                report = write_report(
                    s, s.state_dir / "report", crawl_id=record["id"], seed=seed, store=store
                )
                # The whole-graph analysis the explorer colours communities by.
                job = run_analysis(store, create_job(store, {"top_k": 20})["id"])
                click.echo(f"    {job['summary']['communities']['count']} communities")
                counts = store.counts()
            click.echo(
                f"    graph: {counts['images']} images, {counts['edges']} SIMILAR_TO "
                f"edges, {counts['hashed']} hashed"
            )
            click.echo(f"    report: {report}")

            click.secho("6/6 serving the API", bold=True)
            api_port = port or stack.free_port()
            api = children.start(["serve", "--port", str(api_port)], env, logs / "api.log")
            base = f"http://127.0.0.1:{api_port}"
            try:
                children.wait_http(f"{base}/health", api, logs / "api.log")
            except children.ChildFailed as e:
                raise click.ClickException(str(e)) from None
            with urllib.request.urlopen(  # noqa: S310 (our own server)
                f"{base}/images/{seed}/neighborhood?depth=2", timeout=30
            ) as resp:
                click.echo(f"    {base}/images/{seed}/neighborhood?depth=2 -> {resp.status}")
            click.echo(f"    API: {base} (OpenAPI at {base}/openapi.json)")
            explorer = f"{base}/#/image/{seed}/2"
            if serve:
                click.secho(
                    "Serving; Ctrl-C stops the API, the replica and the workers "
                    "(`lookalike down` stops Redis and the graph).",
                    fg="green",
                )
                click.secho(f"Explorer: {explorer}", bold=True)
                with contextlib.suppress(KeyboardInterrupt):
                    api.wait()
        finally:
            if api is not None:
                children.stop(api)
            children.stop(worker)
    click.secho(
        f"Done. Open {report} in a browser. The stack is still up: "
        "`lookalike status`, `lookalike down`.",
        fg="green",
    )
    if not serve:
        click.secho(
            f"Explorer: `lookalike serve --port {api_port}`, then open {explorer}", bold=True
        )


COMMANDS = [demo]
