"""What timing the RL check on a few rows costs before a stage (``HeldOutStages._check_outlasts``).

For each dataset: fit without RL for ``--fit-time`` seconds, then time the RL check
(``n_samples`` samples per judging row, the decision rule, the CRPS) on its first
``PROBE_ROWS`` judging rows and on all of them, ``--repeats`` times each, as
``tests/training/test_rl.py::test_a_stage_whose_checks_would_outlast_the_budget_is_skipped``
exercises it. Prints medians and the probe's share of an RL stage of ``--stage`` seconds.

Usage::

    python benchmarks/rl_probe.py --datasets diabetes tweets_engagement --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lmreg import LMRegressor, load_dataset  # noqa: E402
from lmreg.stages import PROBE_ROWS  # noqa: E402


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["diabetes"])
    parser.add_argument("--fit-time", type=float, default=60.0)
    parser.add_argument("--stage", type=float, default=75.0, help="RL stage seconds (25%% of max_time=300)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), PROBE_ROWS={PROBE_ROWS}")
    print("| dataset | judging rows | probe s | full check s | probe / check | probe / stage |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.datasets:
        X, y = load_dataset(name)
        est = LMRegressor(max_time=args.fit_time, n_threads=args.threads, random_state=0).fit(X, y)
        y_model = np.asarray(y, dtype=float)
        enc = est._encode(X)
        check = est._judging_rows(*est._split(len(y_model)))[1]
        with est._torch_scope():
            probe = _median_seconds(lambda: est._rl_check(enc, y_model, check[:PROBE_ROWS]), args.repeats)
            full = _median_seconds(lambda: est._rl_check(enc, y_model, check), args.repeats)
        print(f"| {name} | {len(check)} | {probe:.3f} | {full:.3f} | {probe / full:.1%} | {probe / args.stage:.2%} |")


if __name__ == "__main__":
    main()
