"""Fixed-length fits at several seeds: test R² and MAE per (dataset, epochs, seed).

Training changes (the learning-rate schedule above all) move a short fit's accuracy by
less than one seed moves it; this runs the same fits on whatever ``lmreg`` is imported
(a git worktree of another commit through ``PYTHONPATH`` for the other arm) and
``--summary`` pairs two such records seed by seed.

    python benchmarks/short_fits.py --label after --out after.json
    PYTHONPATH=../lmreg-old python benchmarks/short_fits.py --label before --out before.json
    python benchmarks/short_fits.py --summary before.json after.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

DATASETS = ("tweets_engagement", "diabetes", "ames_housing")


def run(datasets, epochs, seeds, train_rows, test_rows, threads, label, out=None) -> dict:
    """Fit one network per (epochs, dataset, seed); the record is rewritten after each fit."""
    import torch
    from sklearn.metrics import mean_absolute_error, r2_score

    import lmreg
    from lmreg import LMRegressor, load_dataset

    record = {"label": label, "lmreg": lmreg.__file__, "threads": threads, "torch": torch.__version__,
              "python": platform.python_version(), "train_rows": train_rows, "test_rows": test_rows, "fits": []}
    for n_epochs in epochs:
        for name in datasets:
            X, y = load_dataset(name, "train", max_rows=train_rows)
            Xt, yt = load_dataset(name, "test", max_rows=test_rows)
            for seed in seeds:
                t = time.perf_counter()
                est = LMRegressor(max_time=None, max_epochs=n_epochs, random_state=seed, n_threads=threads,
                                  n_members=1).fit(X, y)
                pred = est.predict(Xt)
                record["fits"].append({"dataset": name, "epochs": n_epochs, "seed": seed,
                                       "steps": est.fit_result_.steps, "r2": float(r2_score(yt, pred)),
                                       "mae": float(mean_absolute_error(yt, pred)),
                                       "seconds": time.perf_counter() - t})
                print(json.dumps(record["fits"][-1]), flush=True)
                if out:
                    with open(out, "w") as f:
                        json.dump(record, f, indent=1)
    return record


def summary(before: dict, after: dict) -> str:
    """A markdown table: per (dataset, epochs), median R² and MAE of each arm, and in how many
    seeds the second arm's MAE is lower (fits paired by seed)."""
    def key(fit):
        return fit["dataset"], fit["epochs"]

    groups = sorted({key(f) for f in before["fits"]} & {key(f) for f in after["fits"]},
                    key=lambda k: (k[1], k[0]))
    lines = [f"| dataset | epochs (steps) | R² {before['label']} | R² {after['label']} | "
             f"MAE {before['label']} | MAE {after['label']} | {after['label']} lower MAE |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for g in groups:
        b = {f["seed"]: f for f in before["fits"] if key(f) == g}
        a = {f["seed"]: f for f in after["fits"] if key(f) == g}
        seeds = sorted(set(b) & set(a))
        med = lambda fits, m: statistics.median(fits[s][m] for s in seeds)  # noqa: E731
        lower = sum(a[s]["mae"] < b[s]["mae"] for s in seeds)
        lines.append(f"| {g[0]} | {g[1]} ({a[seeds[0]]['steps']}) | {med(b, 'r2'):.3f} | {med(a, 'r2'):.3f} | "
                     f"{med(b, 'mae'):.4g} | {med(a, 'mae'):.4g} | {lower} of {len(seeds)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--epochs", nargs="+", type=int, default=[3, 10])
    p.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (default: 5)")
    p.add_argument("--train-rows", type=int, default=600)
    p.add_argument("--test-rows", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--label", default="this")
    p.add_argument("--out", default=None)
    p.add_argument("--summary", nargs=2, metavar=("BEFORE", "AFTER"), help="pair two records; no fit")
    args = p.parse_args(argv)
    if args.summary:
        records = []
        for path in args.summary:
            with open(path) as f:
                records.append(json.load(f))
        print(summary(*records))
        return 0
    run(args.datasets, args.epochs, range(args.seeds), args.train_rows, args.test_rows, args.threads,
        args.label, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
