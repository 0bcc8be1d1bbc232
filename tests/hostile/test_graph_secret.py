"""The embedded graph server's root password stays secret from other local users: it is on
no process's command line (which every user can read), only in a file of its owner's; and
`lookalike status` says everything needed to connect a Bolt client except the password,
which it says where to find."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from lookalike.settings import Settings
from lookalike_cli.main import child_command
from tests.support import REPO


@pytest.fixture
def graph_record(settings: Settings, embedded: bool) -> dict:
    if not embedded:
        pytest.skip("the embedded graph server is not in use (NEO4J_URI is set)")
    return settings.embedded()["graph"]


def command_lines() -> dict[int, str]:
    lines = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # gone meanwhile
                lines[int(entry.name)] = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
    return lines


def test_no_process_has_the_password_on_its_command_line(graph_record: dict) -> None:
    password = graph_record["password"]
    lines = command_lines()
    assert graph_record["pid"] in lines  # the server is seen
    assert "rootPasswordPath" in lines[graph_record["pid"]]  # it reads the file instead
    assert [pid for pid, line in lines.items() if password in line] == []


def test_the_password_file_is_its_owners_only(graph_record: dict) -> None:
    secret = Path(graph_record["password_file"])
    assert secret.read_text().strip() == graph_record["password"]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_status_says_how_to_connect_but_not_the_password(
    settings: Settings, graph_record: dict
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOKALIKE_", "NEO4J_"))}
    env["LOOKALIKE_STATE_DIR"] = str(settings.state_dir)
    out = subprocess.run(
        child_command("status"),
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert graph_record["uri"] in out
    assert "user      root" in out and "database  lookalike" in out
    assert graph_record["password_file"] in out
    assert "cypher-shell" in out
    assert graph_record["password"] not in out
