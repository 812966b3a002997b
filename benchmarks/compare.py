"""Side-by-side markdown table of lmreg runs (``lmreg bench`` / ``suite.py`` JSON files).

Usage::

    python benchmarks/compare.py sft=results/a.json rl=results/b1.json,results/b2.json

Each run is NAME=PATH[,PATH...] (several files are merged, e.g. halves run in
parallel); only lmreg records are read. Prints one row per dataset with each run's
R^2, Spearman, MAE, RMSE, CRPS and 80% coverage, then the relative MAE change and
the coverage change (points) of every run against the first.
"""

from __future__ import annotations

import argparse
import json


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="NAME=PATH[,PATH...] of lmreg bench JSON files; the first is the reference")
    args = p.parse_args(argv)
    runs = {}
    for item in args.runs:
        name, _, paths = item.partition("=")
        runs[name] = {}
        for path in paths.split(","):
            with open(path) as f:
                runs[name].update({r["dataset"]: r for r in json.load(f) if r.get("model", "lmreg") == "lmreg"})
    names = list(runs)
    datasets = [d for d in runs[names[0]] if all(d in runs[n] for n in names)]
    head = ["dataset"] + [f"{n} {m}" for n in names for m in ("R²", "Spearman", "MAE", "RMSE", "CRPS", "cov80")]
    head += [f"{n} {m}" for n in names[1:] for m in ("ΔMAE", "Δcov80")]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for d in datasets:
        cells = [d]
        for n in names:
            r = runs[n][d]
            cells += [f"{r['r2']:.3f}", f"{r['spearman']:.3f}", f"{r['mae']:.4g}", f"{r['rmse']:.4g}",
                      f"{r.get('crps', float('nan')):.4g}", f"{r.get('coverage80', float('nan')):.2f}"]
        ref = runs[names[0]][d]
        for n in names[1:]:
            r = runs[n][d]
            cells += [f"{100 * (r['mae'] - ref['mae']) / ref['mae']:+.1f}%",
                      f"{100 * (r.get('coverage80', float('nan')) - ref.get('coverage80', float('nan'))):+.1f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
