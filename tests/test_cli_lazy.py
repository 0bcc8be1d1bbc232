"""The ``lookalike`` group loads commands lazily: its table agrees with the commands, ``--help``
lists them all without importing them, and a command imports its own module alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lookalike_cli import common, lazy
from lookalike_cli.command_table import TABLE
from lookalike_cli.main import cli


def test_the_table_is_written_from_the_commands() -> None:
    assert lazy.computed_table() == TABLE, "run `python -m lookalike_cli.lazy`"
    assert lazy.TABLE_FILE.read_text(encoding="utf-8") == lazy.table_source()


@pytest.mark.parametrize("limit", [20, 45, 62, 200])
def test_help_lists_each_command_as_the_command_itself_would(limit: int) -> None:
    for area, command in lazy.real_commands():
        assert command.name is not None
        stand_in = lazy.LazyGroup(table=TABLE)._listed(command.name)
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)
        assert TABLE[command.name][0] == area


def _after(code: str) -> list[str]:
    """What a fresh Python prints after ``code``: which areas and heavy modules it imported."""
    probe = (
        f"{code}\nimport sys\n"
        f"print(sorted(m for m in sys.modules if m in {list(lazy.AREAS)!r}))\n"
        "print(*(m in sys.modules for m in ('neo4j', 'pydantic', 'lookalike.stack')))"
    )
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()


def test_help_lists_every_command_without_importing_any() -> None:
    out = _after(
        "import sys; from lookalike_cli.main import main; sys.argv = ['lookalike', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    for name in TABLE:
        assert any(line.startswith(f"  {name} ") for line in out), name
    assert out[-2:] == ["[]", "False False False"]


def test_a_command_imports_its_module_alone() -> None:
    out = _after("from lookalike_cli.main import cli; cli.get_command(None, 'search')")
    assert out == ["['lookalike_cli.index']", "False True False"]


def test_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(cli, ["serch"])
    assert result.exit_code == 2 and "No such command 'serch'" in result.output
    assert cli.get_command(None, "search") is not None


def test_user_errors_are_named_by_existing_classes() -> None:
    import importlib

    from lookalike_cli import index

    for name in (*common.USER_ERRORS, *index._ERRORS):
        module, _, cls = name.partition(":")
        assert issubclass(getattr(importlib.import_module(module), cls), BaseException), name


def test_user_errors_become_clean_exits_and_others_stay_errors() -> None:
    from lookalike.stack import StackError

    @click.command()
    @click.argument("what")
    @common.user_errors(KeyError, "lookalike.settings:SettingsError")
    def fails(what: str) -> None:
        raise {"stack": StackError("the stack says what to fix"), "key": KeyError("k")}.get(
            what, RuntimeError("a bug")
        )

    result = CliRunner().invoke(fails, ["stack"])
    assert result.exit_code == 1 and "Error: the stack says what to fix" in result.output
    assert CliRunner().invoke(fails, ["key"]).exit_code == 1
    bug = CliRunner().invoke(fails, ["bug"])
    assert isinstance(bug.exception, RuntimeError)


@pytest.mark.parametrize(
    ("argv", "before", "after"),
    [
        (["lookalike", "search", "x.jpg"], None, "1"),
        (["lookalike", "duplicates", "abc"], None, "1"),
        (["lookalike", "search", "x.jpg"], "2", "2"),  # the user's choice stands
        (["lookalike", "indexer"], None, None),  # the sidecar's matrix products keep threads
        (["lookalike", "worker"], None, None),
        (["lookalike"], None, None),
    ],
)
def test_query_commands_start_numpy_with_one_blas_thread(
    argv: list[str], before: str | None, after: str | None
) -> None:
    from lookalike_cli.main import one_thread_for_queries

    environ = {} if before is None else {"OPENBLAS_NUM_THREADS": before}
    one_thread_for_queries(argv, environ)
    assert environ.get("OPENBLAS_NUM_THREADS") == after


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_a_search_process_starts_no_blas_threads() -> None:
    """Set before numpy's import, where OpenBLAS reads it (too late once numpy is loaded): the
    process has its one thread after importing the command and numpy."""
    code = (
        "import os, sys; sys.argv = ['lookalike', 'search', '--help']\n"
        "from lookalike_cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "import lookalike_cli.index, numpy\n"
        "print(os.environ.get('OPENBLAS_NUM_THREADS'), len(os.listdir('/proc/self/task')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert run.stdout.strip().splitlines()[-1] == "1 1"
