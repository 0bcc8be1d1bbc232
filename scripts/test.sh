#!/usr/bin/env bash
# The test suite: set up if needed, lint, then run every test through the real servers.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/crawl -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
