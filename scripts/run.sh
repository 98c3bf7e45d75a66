#!/usr/bin/env bash
# Starts Atelier on http://127.0.0.1:7860 (arguments go to app.py). The first run sets up .venv with
# requirements.txt, once, and says what it is doing while it downloads and installs.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "atelier: $*" >&2; }
ready() { [ -x .venv/bin/python ] && .venv/bin/python -c "import torch, gradio, PIL, numpy, imageio, diskcache, safetensors" 2>/dev/null; }
if ! ready; then
  command -v python3 >/dev/null 2>&1 || { say "python3 is missing: install Python 3.10 or newer, then run this again."; exit 1; }
  say "first run: setting up .venv with the packages in requirements.txt (torch, gradio, Pillow, ...)."
  say "This downloads a few hundred MB to a few GB (torch is most of it) and takes a few minutes, once."
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || { say "python3 -m venv failed (on Debian or Ubuntu: apt-get install python3-venv)."; exit 1; }
  fi
  say "installing (pip's own progress follows)..."
  .venv/bin/python -m pip install --disable-pip-version-check --progress-bar on -r requirements.txt \
    || { say "installing the requirements failed (the reason is above); run scripts/run.sh again to retry."; exit 1; }
  say "set up. Starting Atelier (the first start also checks the data folder)."
fi
exec .venv/bin/python app.py "$@"
