"""The ``lookalike`` command: one click group, with each area's commands in its own module.

Why lazily: each area (stack, replica, crawl, index, API, demo) owns its commands, and only
the invoked command's module is imported (lazy.py), so a command pays for its own imports
alone and ``lookalike --help`` for none; one broken area cannot take the whole CLI down.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping, Sequence

import click

from lookalike_cli.command_table import TABLE
from lookalike_cli.lazy import LazyGroup


@click.group(cls=LazyGroup, table=TABLE, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Lookalike: map how the images of a collection resemble each other."""


def child_command(*args: str) -> list[str]:
    """``lookalike ARGS`` as a child process of this Python (the console script need not be
    on PATH). The child restores Python's SIGINT handler first: a child of a background job
    inherits an ignored SIGINT and would otherwise never stop on Ctrl-C."""
    return [
        sys.executable,
        "-c",
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from lookalike_cli.main import main; main()",
        *args,
    ]


# One-shot queries of the index. numpy's OpenBLAS starts a thread per core when numpy is
# imported, and those threads spin-wait for work these commands never give them: ~0.1 s of
# CPU per call, a quarter of a search (bench/README.md, search). The indexer sidecar, the
# workers and the API keep their threads.
QUERY_COMMANDS = frozenset({"search", "duplicates", "lookalikes"})


def one_thread_for_queries(argv: Sequence[str], environ: MutableMapping[str, str]) -> None:
    """Before numpy is imported: one OpenBLAS thread for a query command, unless the user
    chose a number."""
    if len(argv) > 1 and argv[1] in QUERY_COMMANDS:
        environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    one_thread_for_queries(sys.argv, os.environ)
    cli()


if __name__ == "__main__":  # python -m lookalike_cli.main, as well as the console script
    main()
