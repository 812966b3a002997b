"""Side-by-side markdown table of several ``suite.py`` result files.

Usage::

    python benchmarks/compare.py sft=results/a.json rl=results/b.json [--metric mae]

Prints one row per dataset with each run's R^2, MAE, CRPS and 80% coverage, and the
relative MAE change of every run against the first.
"""

from __future__ import annotations

import argparse
import json


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="NAME=PATH of suite.py JSON files; the first is the reference")
    args = p.parse_args(argv)
    runs = {}
    for item in args.runs:
        name, _, path = item.partition("=")
        with open(path) as f:
            runs[name] = {r["dataset"]: r for r in json.load(f)}
    names = list(runs)
    datasets = [d for d in runs[names[0]] if all(d in runs[n] for n in names)]
    head = ["dataset"] + [f"{n} {m}" for n in names for m in ("R²", "MAE", "CRPS", "cov80")]
    head += [f"{n} ΔMAE" for n in names[1:]]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for d in datasets:
        cells = [d]
        for n in names:
            r = runs[n][d]
            cells += [f"{r['r2']:.3f}", f"{r['mae']:.4g}", f"{r.get('crps', float('nan')):.4g}",
                      f"{r.get('coverage80', float('nan')):.2f}"]
        ref = runs[names[0]][d]["mae"]
        cells += [f"{100 * (runs[n][d]['mae'] - ref) / ref:+.1f}%" for n in names[1:]]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
