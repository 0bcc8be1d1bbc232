"""Every failure reason a crawl task records is declared (lookalike.errors): the API, the CLI,
the report and the README list failures by reason, and test_docs checks the README names
every declared one, so a reason typed only where it is recorded would be an undocumented one.
"""

from __future__ import annotations

import ast
from pathlib import Path

from lookalike.errors import REASONS, STORE_REASONS

TASKS = Path(__file__).resolve().parents[2] / "workers" / "tasks.py"
# The functions that record a failure, and where their reason argument sits.
RECORDERS = {"fail_fetch": 2, "fail_hash": 1, "_hash_failed": 2, "_outage": 5}


def _recorded_reasons(source: str) -> list[tuple[int, str]]:
    """(line, reason) of every reason written out as a string where one is recorded: an
    argument in a recorder's reason position, or a value assigned to ``reason``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            at = RECORDERS.get(name or "")
            if at is not None and len(node.args) > at:
                arg = node.args[at]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append((arg.lineno, arg.value))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                pairs: list[tuple[ast.expr, ast.expr]] = []
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = list(zip(target.elts, node.value.elts, strict=False))
                else:
                    pairs = [(target, node.value)]
                for name_node, value in pairs:
                    if (
                        isinstance(name_node, ast.Name)
                        and name_node.id == "reason"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        found.append((value.lineno, value.value))
    return found


def test_every_reason_the_tasks_record_is_declared() -> None:
    recorded = _recorded_reasons(TASKS.read_text())
    # the recorders are found at all (else this test would pass on anything)
    assert {"graph_unavailable", "redis_unavailable", "unexpected_error"} <= {
        r for _, r in recorded
    }
    undeclared = [(line, r) for line, r in recorded if r not in REASONS and r not in STORE_REASONS]
    assert not undeclared, (
        f"workers/tasks.py records undeclared reasons (line, reason): {undeclared}"
    )


def test_an_undeclared_reason_is_caught() -> None:
    source = (
        "def f(state, r):\n"
        "    state.fail_fetch(r, 0, 'graph_gone', 'x')\n"
        "    reason, message = 'disk_full', 'y'\n"
    )
    assert sorted(r for _, r in _recorded_reasons(source)) == ["disk_full", "graph_gone"]
