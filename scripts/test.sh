#!/usr/bin/env bash
# Install lmreg with its test dependencies and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh dev
. .venv/bin/activate
python -m pytest -q -p no:cacheprovider --timeout 900 "$@"
