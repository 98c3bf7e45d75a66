#!/usr/bin/env bash
# Runs the whole test suite; fails when no test ran (pytest exit code 5).
set -uo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt; }
.venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "error: no tests were collected" >&2; exit 1; fi
exit $rc
