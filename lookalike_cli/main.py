"""The ``lookalike`` command: one click group, with each area's commands in its own module.

Why lazily: each area (stack, replica, crawl, index, API, demo) owns its commands, and only
the invoked command's module is imported (lazy.py), so a command pays for its own imports
alone and ``lookalike --help`` for none; one broken area cannot take the whole CLI down.
"""

from __future__ import annotations

import sys

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


def main() -> None:
    cli()


if __name__ == "__main__":  # python -m lookalike_cli.main, as well as the console script
    main()
