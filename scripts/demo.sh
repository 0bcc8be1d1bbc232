#!/usr/bin/env bash
# The main job: set up if needed, then crawl, index, analyse, report and serve the demo
# collection. Extra arguments go to `lookalike demo` (see `lookalike demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lookalike demo "$@"
