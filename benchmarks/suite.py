"""Fit LMRegressor on the bundled public suite and record test metrics.

Usage::

    python benchmarks/suite.py --max-time 600 --threads 1 --out benchmarks/results/suite.json
    python benchmarks/suite.py --datasets tweets_engagement diabetes --max-time 60

One JSON record per dataset (appended as each finishes): R^2, Spearman, MAE, RMSE,
fit and predict seconds, optimizer steps, epochs, why training stopped, and the
machine, thread count and library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time

import numpy as np
import sklearn
import torch
import transformers
from scipy.stats import spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from lmreg import LMRegressor, __version__, list_datasets, load_dataset
from lmreg.cli import parse_params
from lmreg.metrics import crps, interval_coverage, quantile_coverage


def environment(threads: int) -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "threads": threads, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "sklearn": sklearn.__version__,
            "lmreg": __version__, "commit": commit}


def run_one(name: str, args) -> dict:
    X, y = load_dataset(name, "train")
    Xt, yt = load_dataset(name, "test")
    est = LMRegressor(max_time=args.max_time, random_state=args.seed, n_threads=args.threads,
                      n_samples=args.n_samples, **parse_params(args.param or []))
    t = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = est.predict(Xt)
    predict_s = time.perf_counter() - t
    samples = est.sample(Xt)
    levels = [0.1, 0.5, 0.9]
    qpred = np.quantile(samples, levels, axis=1).T
    r = est.fit_result_
    return {
        "crps": crps(yt, samples), "coverage80": interval_coverage(yt, qpred[:, 0], qpred[:, 2]),
        "quantile_coverage": {str(k): v for k, v in quantile_coverage(yt, qpred, levels).items()},
        "dataset": name, "n_train": len(y), "n_test": len(yt),
        "r2": r2_score(yt, pred), "spearman": float(spearmanr(yt, pred).statistic),
        "mae": mean_absolute_error(yt, pred), "rmse": float(np.sqrt(mean_squared_error(yt, pred))),
        "fit_s": fit_s, "predict_s": predict_s, "steps": r.steps, "epochs": r.epochs,
        "stopped": r.stopped, "best_val_mae": r.best_val_mae, "fallback": est.fallback_,
        "rl_steps_done": est.rl_result_.steps if est.rl_result_ else 0,
        "rl_kept": est.rl_result_.kept if est.rl_result_ else None,
        "rl_val_mae": est.rl_result_.val_mae if est.rl_result_ else None,
        "max_time": args.max_time, "n_samples": est.n_samples,
        "params": {k: v for k, v in est.get_params().items() if isinstance(v, (int, float, str, type(None)))},
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="*", default=None)
    p.add_argument("--max-time", type=float, default=600.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-samples", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--param", nargs="*", help="extra LMRegressor parameters as name=value")
    p.add_argument("--out", default="benchmarks/results/suite.json")
    args = p.parse_args(argv)
    names = args.datasets or list_datasets()
    env = environment(args.threads)
    records = []
    for name in names:
        rec = run_one(name, args)
        rec["env"] = env
        records.append(rec)
        print(f"{name:20s} R2 {rec['r2']:.3f}  Spearman {rec['spearman']:.3f}  MAE {rec['mae']:.4g}  "
              f"fit {rec['fit_s']:.0f}s  predict {rec['predict_s']:.1f}s  steps {rec['steps']} "
              f"({rec['stopped']})  CRPS {rec['crps']:.4g}  cov80 {rec['coverage80']:.3f}  "
              f"q-cov {rec['quantile_coverage']}", flush=True)
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()
