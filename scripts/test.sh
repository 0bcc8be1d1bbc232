#!/usr/bin/env bash
# The test suite: set up if needed, lint, type-check lookalike/ and workers/ (mypy, configured
# in pyproject.toml), then run every test through the real servers.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/crawl -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
