"""Command line: ``lmreg demo`` (also ``python -m lmreg demo``).

``demo`` fits LMRegressor on a bundled dataset within a time budget and prints the
test R^2, MAE and fit time next to a TF-IDF + ridge baseline on the same rows.
"""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args) -> int:
    import numpy as np
    from sklearn.metrics import mean_absolute_error, r2_score

    from . import LMRegressor, list_datasets, load_dataset
    from .baselines import tfidf_ridge

    if args.dataset not in list_datasets():
        print(f"lmreg: unknown dataset {args.dataset!r}; available: {', '.join(list_datasets())}",
              file=sys.stderr)
        return 2
    X, y = load_dataset(args.dataset, "train")
    Xt, yt = load_dataset(args.dataset, "test")
    print(f"{args.dataset}: {len(y)} train rows, {len(yt)} test rows; lmreg budget {args.max_time:.0f} s, "
          f"{args.threads} thread(s)", flush=True)
    rows = []
    t = time.perf_counter()
    est = LMRegressor(max_time=args.max_time, random_state=args.seed, n_threads=args.threads,
                      verbose=args.verbose).fit(X, y)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = est.predict(Xt)
    rows.append(("lmreg", r2_score(yt, pred), mean_absolute_error(yt, pred), fit_s, time.perf_counter() - t))
    t = time.perf_counter()
    ridge = tfidf_ridge().fit(X, y)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = ridge.predict(Xt)
    rows.append(("tfidf_ridge", r2_score(yt, pred), mean_absolute_error(yt, pred), fit_s,
                 time.perf_counter() - t))
    mean_pred = np.full(len(yt), float(np.mean(y)))
    rows.append(("mean", r2_score(yt, mean_pred), mean_absolute_error(yt, mean_pred), 0.0, 0.0))
    print(f"\n{'model':<12} {'test R2':>8} {'test MAE':>10} {'fit s':>8} {'predict s':>10}")
    for name, r2, mae, fs, ps in rows:
        print(f"{name:<12} {r2:>8.3f} {mae:>10.4g} {fs:>8.1f} {ps:>10.1f}")
    r = est.fit_result_
    print(f"\nlmreg: {r.steps} optimizer steps ({r.epochs:.1f} epochs), stopped by {r.stopped}, "
          f"{est.n_samples} samples per row, decision rule {est.decision}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lmreg", description="Language-model regression.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit on a bundled dataset and compare with TF-IDF + ridge")
    demo.add_argument("--dataset", default="tweets_engagement")
    demo.add_argument("--max-time", type=float, default=200.0, help="fit budget in seconds")
    demo.add_argument("--threads", type=int, default=2)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    return _demo(args)


if __name__ == "__main__":
    sys.exit(main())
