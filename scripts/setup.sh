#!/usr/bin/env bash
# Shared set-up for run.sh and test.sh: a virtualenv with the project installed.
# Idempotent: reinstalls only when pyproject.toml changed since the last install, or when
# an extra is asked for that is not installed yet. One stamp, .venv/.installed, records the
# pyproject.toml it installed (line 1) and the extras installed with it (line 2), so a set-up
# with more extras (test.sh: dev) also satisfies one with fewer (run.sh: none).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=".venv/.installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="" installed=""
if [ -f "$stamp" ]; then
  { read -r have || true; read -r installed || true; } < "$stamp"
fi
# after a pyproject change, install again what was there (and what is asked for now)
all="$(printf '%s\n' ${installed//,/ } ${extras//,/ } | sort -u | paste -sd, -)"
if [ "$have" != "$want" ] || [ "$all" != "$installed" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${all:+[$all]}"
  printf '%s\n%s\n' "$want" "$all" > "$stamp"
fi
