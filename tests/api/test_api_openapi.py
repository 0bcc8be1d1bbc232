"""The OpenAPI description: it covers every route, and schemathesis, generating requests from
it against the running server on the real stack, finds no disagreement with it under every
check: no server error, no answer that breaks the document, no valid request refused and no
invalid one accepted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.settings import load_settings
from services.api.app import create_app
from services.api.openapi import check_routes

pytestmark = pytest.mark.timeout(600)

CONFIG = """
[[operations]]
include-path-regex = "^/images/"
parameters = {{ "id" = "{image}" }}

[[operations]]
include-path = "/paths"
parameters = {{ "from" = "{image}", "to" = "{other}" }}

[[operations]]
include-path = "/analysis/compare"
parameters = {{ "seeds" = "{image},{other}" }}

# What no JSON schema can say, and only these: whether a text is a Cypher statement the graph
# server accepts, and whether the bytes of a file are a picture. Schema-valid requests there
# may get the 400 that says so; every other check still runs on them.
[[operations]]
include-path = "/cypher"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "403", "404", "408", "5xx"]

[[operations]]
include-path = "/search"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "413", "5xx"]
"""


def test_every_route_is_described_and_every_description_served() -> None:
    assert check_routes(create_app(load_settings())) == []


def test_document_is_openapi_31(api) -> None:
    doc = api.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    assert (
        doc["paths"]["/images/{id}/neighborhood"]["get"]["parameters"][1]["schema"]["maximum"] == 3
    )  # limits come from the settings the server runs with
    listing = api.get("/").json()
    assert "GET /images/{id}/neighborhood" in listing["endpoints"]


def test_schemathesis_finds_nothing_under_every_check(
    known_graph, servers, tmp_path: Path, redis_url
) -> None:
    local, _ = known_graph
    # With a token configured and none given to schemathesis, the mutating endpoints answer
    # 401 (and start no crawls or jobs); everything else is exercised in full.
    api = servers(local, LOOKALIKE_API_TOKEN="not-given-to-schemathesis")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.format(image="c0i000", other="c3i004"))
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{api.url}/openapi.json",
        "--max-examples",
        "5",
        "--seed",
        "7",
        "--phases",
        "examples,coverage,fuzzing",
        "--checks",
        "all",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        # One worker: CPython 3.11's ast.parse, which hypothesis calls to describe its
        # strategies, is not thread-safe ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--no-color",
        "--max-failures",
        "20",
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=540, cwd=tmp_path)
    log = tmp_path / "schemathesis.log"
    log.write_text(run.stdout + run.stderr)
    output = f"(whole output: {log})\n" + run.stdout[-12000:] + run.stderr[-3000:]
    assert run.returncode == 0, output + "\n--- server log\n" + api.log_text()
    assert "Server error" not in output
