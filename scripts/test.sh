#!/usr/bin/env bash
# Type-check core, then run every test: unit, integration (SQLite and the local Postgres) and the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
# The browser test drives Debian's Chromium (playwright's own browser download is not used).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
# type check first: a failing mypy fails the run
.venv/bin/mypy
# Four xdist workers on any machine: most of the suite waits on real processes, servers and
# leases, not the CPU, so two cores run four at once. One file per worker keeps a module's app
# and server fixtures started once. A later `-n 0` runs in this process (for -s or --pdb).
exec .venv/bin/python -m pytest -n 4 --dist loadfile "$@"
