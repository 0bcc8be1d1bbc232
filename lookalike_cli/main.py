"""The ``lookalike`` command: one click group, with each area's commands in its own module.

Why a list of module names: each area (stack, replica, crawl, index, API, demo) owns its
commands, and importing them lazily keeps ``lookalike --help`` fast and lets one broken area
fail with a clear message instead of taking the whole CLI down.
"""

from __future__ import annotations

import importlib
import sys

import click

# Modules exposing a module-level ``COMMANDS`` list of click commands/groups.
_COMMAND_MODULES: list[str] = [
    "lookalike_cli.stack",
    "lookalike_cli.crawl",
    "lookalike_cli.replica",
    "lookalike_cli.serve",
    "lookalike_cli.index",
    "lookalike_cli.evaluate",
    "lookalike_cli.demo",
    "lookalike_cli.model",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Lookalike: map how the images of a collection resemble each other."""


def _register() -> None:
    for name in _COMMAND_MODULES:
        module = importlib.import_module(name)
        for command in module.COMMANDS:
            cli.add_command(command)


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
    _register()
    cli()


if __name__ == "__main__":  # python -m lookalike_cli.main, as well as the console script
    main()
