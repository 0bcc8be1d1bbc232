"""``lookalike serve``: run the Flask API; ``lookalike report``: write the HTML report.

Why gunicorn by default: the development server is single-process and not meant for load;
gunicorn with threaded workers is what the container runs, so the demo, the tests and the
benchmark measure the same server. ``--dev`` uses Flask's server (auto-reload-free, threaded)
for debugging.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from lookalike_cli.common import settings, user_errors


def run_gunicorn(
    app: Any,
    host: str,
    port: int,
    workers: int | None = None,
    threads: int | None = None,
    access_log: bool = False,
) -> None:
    from gunicorn.app.base import BaseApplication

    from services.api import gunicorn_conf

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            # The API's one gunicorn configuration, then what this command was asked for.
            for name, value in vars(gunicorn_conf).items():
                if name in self.cfg.settings:
                    self.cfg.set(name, value)
            self.cfg.set("bind", f"{host}:{port}")
            if workers is not None:
                self.cfg.set("workers", workers)
            if threads is not None:
                self.cfg.set("threads", threads)
            self.cfg.set("accesslog", "-" if access_log else None)

        def load(self) -> Any:
            return app

    _Server().run()


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on (0.0.0.0 for every interface).",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 64),
    help="gunicorn worker processes  [default: services/api/gunicorn_conf.py's]",
)
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(1, 256),
    help="Threads per worker  [default: services/api/gunicorn_conf.py's]",
)
@click.option("--dev", is_flag=True, help="Use Flask's development server instead of gunicorn.")
@click.option("--access-log", is_flag=True, help="Log every request.")
@user_errors()
def serve(
    host: str, port: int, workers: int | None, threads: int | None, dev: bool, access_log: bool
) -> None:
    """Serve the HTTP API (OpenAPI description at /openapi.json)."""
    from services.api.app import create_app

    s = settings()
    app = create_app(s)
    click.echo(f"Lookalike API on http://{host}:{port}/  (OpenAPI: /openapi.json)", err=True)
    if dev:
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    else:
        run_gunicorn(app, host, port, workers, threads, access_log)


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("lookalike-report"),
    show_default=True,
    help="Folder for report.html and its pictures.",
)
@click.option("--crawl", "crawl_id", default=None, help="Summarise this crawl (default: latest).")
@click.option(
    "--seed",
    default=None,
    help="Image whose neighbourhood to draw (default: the most connected image).",
)
@user_errors()
def report(out_dir: Path, crawl_id: str | None, seed: str | None) -> None:
    """Write an HTML report: collection, crawl, metrics, degree histogram, a neighbourhood
    picture with thumbnails, near-duplicate groups."""
    from services.api.report.write import write_report

    path = write_report(settings(), out_dir, crawl_id=crawl_id, seed=seed)
    click.echo(f"report written: {path}")


COMMANDS = [serve, report]
