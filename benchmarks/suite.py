"""Fit LMRegressor alone on the bundled suite (``lmreg bench --models lmreg``).

Kept for the commands recorded in docs/benchmarks.md; the harness itself lives in
:mod:`lmreg.bench` (records, environment, markdown table).

Usage::

    python benchmarks/suite.py --max-time 600 --threads 1 --out benchmarks/results/suite.json
    python benchmarks/suite.py --datasets tweets_engagement diabetes --max-time 60
"""

import sys

from lmreg.bench import main

if __name__ == "__main__":
    sys.exit(main(["--models", "lmreg", *sys.argv[1:]]))
