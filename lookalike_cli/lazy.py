"""Commands loaded on first use: the ``lookalike`` group imports only the invoked command's
module, and lists every command from a table instead of importing them all.

Why: importing every area's module (the graph driver, Redis, numpy, pydantic settings, the
index reader...) took ~0.5 s of CPU before any command ran, most of ``lookalike search``'s
time (bench/README.md, search). The table (``command_table.py``: name -> module and the
words ``--help`` lists) is written from the commands themselves by ``python -m
lookalike_cli.lazy``, and ``tests/test_cli_lazy.py`` checks it is current, so a command is
declared once, in its module's ``COMMANDS``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path

import click

# The areas, each a module with a module-level ``COMMANDS`` list of click commands/groups.
AREAS: tuple[str, ...] = (
    "lookalike_cli.stack",
    "lookalike_cli.crawl",
    "lookalike_cli.replica",
    "lookalike_cli.serve",
    "lookalike_cli.index",
    "lookalike_cli.evaluate",
    "lookalike_cli.demo",
    "lookalike_cli.model",
)
TABLE_FILE = Path(__file__).with_name("command_table.py")
# Entry: (module, short_help, first paragraph of help, hidden): what get_short_help_str reads.
Entry = tuple[str, str | None, str | None, bool]


class LazyGroup(click.Group):
    """A group whose commands are imported from their module when first asked for, and
    listed in ``--help`` from the table (click's documented lazy-loading pattern, with the
    listing taken from the table so that ``--help`` imports nothing either)."""

    def __init__(self, *args: object, table: dict[str, Entry], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.table = table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.table})

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.table:
            module = importlib.import_module(self.table[cmd_name][0])
            for command in module.COMMANDS:
                if command.name == cmd_name:
                    self.add_command(command)
        return self.commands.get(cmd_name)

    def _listed(self, name: str) -> click.Command:
        """The command as ``--help`` lists it: the loaded one, or a stand-in from the table."""
        if name in self.commands:
            return self.commands[name]
        _, short_help, help, hidden = self.table[name]
        return click.Command(name, short_help=short_help, help=help, hidden=hidden)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's Group.format_commands, with the commands from the table
        commands = [
            (name, cmd)
            for name in self.list_commands(ctx)
            if not (cmd := self._listed(name)).hidden
        ]
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl(
                    [(name, cmd.get_short_help_str(limit)) for name, cmd in commands]
                )


def real_commands() -> Iterator[tuple[str, click.Command]]:
    """Every area's commands, imported: (module, command)."""
    for area in AREAS:
        for command in importlib.import_module(area).COMMANDS:
            yield area, command


def entry(area: str, command: click.Command) -> Entry:
    # Only the first paragraph of the help is ever shortened for the listing.
    help = " ".join(command.help.partition("\n\n")[0].split()) if command.help else None
    return (area, command.short_help, help, command.hidden)


def computed_table() -> dict[str, Entry]:
    """The table, from the commands themselves (every area imported)."""
    table: dict[str, Entry] = {}
    for area, command in real_commands():
        assert command.name is not None
        if command.name in table:
            raise ValueError(f"two commands named {command.name!r} ({table[command.name][0]})")
        table[command.name] = entry(area, command)
    return dict(sorted(table.items()))


def _literal(value: str | bool | None, indent: str) -> str:
    """A value as Python, a long string cut in pieces that ``ruff format`` leaves alone."""
    if not isinstance(value, str):
        return repr(value)
    if len(indent) + len(json.dumps(value)) + 1 <= 100:
        return json.dumps(value)
    return f"\n{indent}".join(json.dumps(line) for line in _pieces(value))


def _pieces(text: str, width: int = 80) -> list[str]:
    """``text`` cut after spaces into pieces of at most ``width`` (a long word stays whole)."""
    pieces = [""]
    for word in text.split(" "):
        if pieces[-1] and len(pieces[-1]) + len(word) + 1 > width:
            pieces[-1] += " "
            pieces.append(word)
        else:
            pieces[-1] = f"{pieces[-1]} {word}" if pieces[-1] else word
    return pieces


def table_source() -> str:
    """The text of ``command_table.py``."""
    rows = []
    for name, values in computed_table().items():
        items = "".join(f"        {_literal(v, ' ' * 8)},\n" for v in values)
        rows.append(f"    {json.dumps(name)}: (\n{items}    ),\n")
    return (
        '"""The ``lookalike`` commands: name -> (module, short help, first paragraph of the '
        "help,\nhidden).\n\nWritten by ``python -m lookalike_cli.lazy`` from the commands "
        'themselves: do not edit.\n"""\n\n'
        "from __future__ import annotations\n\n"
        "TABLE: dict[str, tuple[str, str | None, str | None, bool]] = {\n"
        f"{''.join(rows)}}}\n"
    )


if __name__ == "__main__":  # python -m lookalike_cli.lazy
    TABLE_FILE.write_text(table_source(), encoding="utf-8")
    print(f"wrote {TABLE_FILE}")
