"""lmreg vs the classical baselines on the bundled suite (same as ``lmreg bench``).

Usage::

    python benchmarks/accuracy.py --max-time 600 --threads 1 \\
        --out benchmarks/results/accuracy.json --markdown benchmarks/results/accuracy.md --plots docs/img
    python benchmarks/accuracy.py --datasets diabetes --models mean hgb --out /tmp/a.json

See :mod:`lmreg.bench` for the records written.
"""

import sys

from lmreg.bench import main

if __name__ == "__main__":
    sys.exit(main())
