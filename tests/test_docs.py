"""The README documents every setting, and documents nothing that is not one (after
Datasette's ``test_settings_are_documented``); its table is the one the model writes. It
names every reason a crawl records a failure with."""

from __future__ import annotations

import re

from lookalike.errors import REASONS, STORE_REASONS
from lookalike.settings import VARIABLES
from lookalike.settings_table import BEGIN, END, table
from tests.support import REPO

README = (REPO / "README.md").read_text()


def _documented() -> set[str]:
    block = README[README.index(BEGIN) : README.index(END)]
    return set(re.findall(r"^\| `([A-Z0-9_]+)`", block, flags=re.MULTILINE))


def test_every_setting_is_documented() -> None:
    missing = sorted(set(VARIABLES.values()) - _documented())
    assert not missing, f"settings missing from README's table: {missing}"


def test_every_documented_setting_exists() -> None:
    unknown = sorted(_documented() - set(VARIABLES.values()))
    assert not unknown, f"README documents settings that do not exist: {unknown}"


def test_the_readme_table_is_the_generated_one() -> None:
    assert table() in README, (
        "README's settings table is out of date: replace it with the output of "
        "`python -m lookalike.settings_table`"
    )


def test_every_failure_reason_is_documented() -> None:
    """A crawl's failures are counted and listed by reason (API, CLI, report): the README
    names each one a crawl can record."""
    named = set(re.findall(r"`([a-z_]+)`", README))
    assert set(REASONS) | set(STORE_REASONS) <= named
