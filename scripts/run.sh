#!/usr/bin/env bash
# Sets up a virtual environment on first use, then starts Atelier on http://127.0.0.1:7860.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt; }
exec .venv/bin/python app.py "$@"
