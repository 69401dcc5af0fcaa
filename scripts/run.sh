#!/usr/bin/env bash
# Start the app on SQLite (data/studio.db). With no ANTHROPIC_API_KEY it uses the offline sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m core db migrate
exec .venv/bin/streamlit run Home.py --server.port "${PORT:-8501}" "$@"
