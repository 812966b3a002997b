#!/usr/bin/env bash
# Install lmreg and fit it on a bundled dataset, next to a TF-IDF + ridge baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate
python -m lmreg demo "$@"
