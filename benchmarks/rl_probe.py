"""What timing the RL check on one decoding batch costs before a stage (``HeldOutStages._check_seconds``).

For each dataset: fit without RL for ``--fit-time`` seconds, then time the probe (the RL
check, ``n_samples`` samples per judging row with the decision rule and the CRPS, on one
decoding batch of the judging rows) and the check on all of them, ``--repeats`` times
each, as ``tests/training/test_rl.py::test_the_check_is_timed_on_a_whole_decoding_batch``
exercises it. Prints medians, the probe's estimate of the check against its time, and the
probe's share of an RL stage of ``--stage`` seconds.

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
from lmreg.decoding import rows_per_batch  # noqa: E402
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
    print("| dataset | judging rows | probe rows | probe s | estimated check s | check s | probe / stage |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.datasets:
        X, y = load_dataset(name)
        est = LMRegressor(max_time=args.fit_time, n_threads=args.threads, random_state=0).fit(X, y)
        y_model = np.asarray(y, dtype=float)
        enc = est._encode(X)
        check = est._judging_rows(*est._split(len(y_model)))[1]
        rows = max(PROBE_ROWS, rows_per_batch(est.n_samples, device=est.device_))   # as _check_seconds
        with est._torch_scope():
            estimates = []
            probe = _median_seconds(lambda: estimates.append(est._check_seconds(enc, y_model, check, 1e18)),
                                    args.repeats)
            full = _median_seconds(lambda: est._rl_check(enc, y_model, check), args.repeats)
        estimate = statistics.median(e for e in estimates if e is not None) if any(estimates) else float("nan")
        print(f"| {name} | {len(check)} | {min(rows, len(check))} | {probe:.3f} | {estimate:.3f} | {full:.3f} "
              f"| {probe / args.stage:.2%} |")


if __name__ == "__main__":
    main()
