#!/usr/bin/env bash
# Create .venv (if missing) and install lmreg with the given extras.
# On a machine without an NVIDIA GPU the CPU build of torch is installed first, so
# pip does not pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
if ! command -v nvidia-smi >/dev/null 2>&1; then
  python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0" || true
fi
python -m pip install -q -e ".${extras:+[$extras]}"
