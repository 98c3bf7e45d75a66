#!/usr/bin/env bash
# Runs the whole test suite, after setting up what it needs (as .ci/run does): .venv with
# requirements.txt, and Debian's chromium for the browser tests (installed with apt-get when run as
# root; otherwise it stops and says what to install: browser tests are never skipped silently).
# Fails when no test ran (pytest exit code 5).
set -uo pipefail
cd "$(dirname "$0")/.."
say() { echo "test.sh: $*" >&2; }
if ! { [ -x .venv/bin/python ] && .venv/bin/python -c "import torch, gradio, pytest, playwright" 2>/dev/null; }; then
  say "setting up .venv from requirements.txt (first run: a few minutes)"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || { say "python3 -m venv failed (on Debian or Ubuntu: apt-get install python3-venv)"; exit 1; }
  fi
  .venv/bin/python -m pip install --disable-pip-version-check -r requirements.txt \
    || { say "pip install -r requirements.txt failed (the reason is above)"; exit 1; }
fi
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium for the browser tests"
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || { say "apt-get install chromium failed (the reason is above)"; exit 1; }
  else
    say "chromium is missing: the browser tests need Debian's chromium (sudo apt-get install chromium)"
    exit 1
  fi
fi
export ATELIER_REQUIRE_BROWSER=1   # a browser test that cannot start fails instead of skipping
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"   # as core/__init__.py sets it: no spinning threads
.venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "error: no tests were collected" >&2; exit 1; fi
exit $rc
