"""How much of a model's test error is seed variance: single fits vs the average of several seeds.

Fits the default ``LMRegressor`` once per seed (``--seeds``; ``max_time``, threads and
everything else fixed), keeps every fit's test predictions, and reports the test MAE
of each single fit (mean, median, range) next to the MAE of the mean (and of the
median) of the predictions of disjoint groups of ``--group`` seeds and of all of them.
If averaging a few seeds beats every single fit, the error is largely variance (which
seed, which validation checkpoint), and a method that lowers bias, such as the RL
stage, cannot remove it.

Usage::

    python benchmarks/seed_ensemble.py --datasets diabetes --seeds 10 --group 5 --max-time 150 \\
        --threads 1 --out benchmarks/results/ensemble/diabetes.json
    python benchmarks/seed_ensemble.py --report benchmarks/results/ensemble/diabetes.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def summary(y: np.ndarray, preds: np.ndarray, group: int) -> dict:
    """Test MAE of single fits and of averaged groups (``preds``: one row per seed).

    Examples
    --------
    >>> y = np.zeros(2)
    >>> s = summary(y, np.array([[1.0, -1.0], [-1.0, 1.0], [3.0, 3.0], [-3.0, -3.0]]), group=2)
    >>> s["single_mean"], s["groups"], s["all_mean_of_preds"]
    (2.0, [{'seeds': [0, 1], 'mean_of_preds': 0.0, 'median_of_preds': 0.0}, {'seeds': [2, 3], 'mean_of_preds': 0.0, 'median_of_preds': 0.0}], 0.0)
    """
    single = np.abs(preds - y).mean(axis=1)
    groups = [list(range(i, i + group)) for i in range(0, len(preds) - group + 1, group)]
    return {
        "single": single.tolist(), "single_mean": float(single.mean()), "single_median": float(np.median(single)),
        "groups": [{"seeds": g, "mean_of_preds": float(np.abs(preds[g].mean(0) - y).mean()),
                    "median_of_preds": float(np.abs(np.median(preds[g], 0) - y).mean())} for g in groups],
        "all_mean_of_preds": float(np.abs(preds.mean(0) - y).mean()),
    }


def run(args) -> list:
    from lmreg import LMRegressor, load_dataset

    records = []
    for ds in args.datasets:
        X, y = load_dataset(ds, "train")
        Xt, yt = load_dataset(ds, "test")
        preds, seconds = [], []
        for seed in range(args.seeds):
            t = time.perf_counter()
            est = LMRegressor(max_time=args.max_time, n_threads=args.threads, random_state=seed,
                              n_members=1).fit(X, y)
            seconds.append(time.perf_counter() - t)
            preds.append(est.predict(Xt))
            print(f"{ds} seed {seed}: test MAE {np.abs(preds[-1] - yt).mean():.4g} ({seconds[-1]:.0f} s)", flush=True)
        rec = {"dataset": ds, "max_time": args.max_time, "threads": args.threads, "fit_s": seconds,
               **summary(np.asarray(yt, float), np.array(preds), args.group), "preds": np.array(preds).tolist()}
        records.append(rec)
        print(report(rec), flush=True)
    return records


def report(rec: dict) -> str:
    s = rec["single"]
    lines = [f"{rec['dataset']}: single fits MAE mean {rec['single_mean']:.4g}, median {rec['single_median']:.4g}, "
             f"range {min(s):.4g}-{max(s):.4g} ({len(s)} seeds)"]
    for g in rec["groups"]:
        lines.append(f"  seeds {g['seeds'][0]}-{g['seeds'][-1]} averaged: MAE {g['mean_of_preds']:.4g} "
                     f"({g['mean_of_preds'] / rec['single_mean'] - 1:+.1%} vs the single mean); "
                     f"median of predictions {g['median_of_preds']:.4g}")
    lines.append(f"  all {len(s)} averaged: MAE {rec['all_mean_of_preds']:.4g}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--report", nargs="+", metavar="JSON", help="print the summary of earlier runs and exit")
    p.add_argument("--datasets", nargs="+", default=["diabetes"])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--group", type=int, default=5)
    p.add_argument("--max-time", type=float, default=150.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.report:
        for path in args.report:
            for rec in json.load(open(path)):
                print(report(rec))
        return 0
    records = run(args)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(records, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
