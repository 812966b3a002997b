"""Seed ensembles (``n_members``) against the single network, from the same fit.

With ``n_members="auto"`` the first network is trained exactly as a single fit
(same seed, same deadline); members are added only with the time early stopping
left. So one fit gives both arms, paired: the ensemble as fitted, and its first
network alone, recalibrated on the same validation rows from its own samples
(what a single fit's ``calibrator_`` is). Records point metrics, CRPS and the
calibrated and raw 80% coverage of both, the member count and each member's time.

Usage::

    python benchmarks/members.py --datasets diabetes ames_housing --seeds 0 1 2 \\
        --max-time 300 --threads 1 --out benchmarks/results/members/auto_300_a.json
    python benchmarks/members.py --report benchmarks/results/members/*.json
    python benchmarks/members.py --table benchmarks/results/members/*.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _scores(est, Xt, yt) -> dict:
    from lmreg.bench import _lmreg_extras, _point_metrics

    t = time.perf_counter()
    pred = np.asarray(est.predict(Xt), dtype=float)
    seconds = time.perf_counter() - t
    extras = _lmreg_extras(est, Xt, yt)
    keep = ("crps", "coverage80", "coverage80_raw")
    return {**_point_metrics(yt, pred), **{k: extras[k] for k in keep}, "predict_s": seconds}


def run(args) -> list:
    from lmreg import LMRegressor, load_dataset

    import lmreg.members

    n_members = args.members if args.members == "auto" else int(args.members)
    if args.auto_margin is not None:  # trying another "auto" rule without changing the package
        lmreg.members.AUTO_MARGIN = args.auto_margin
    records = []
    for ds in args.datasets:
        X, y = load_dataset(ds, "train")
        Xt, yt = load_dataset(ds, "test")
        yt = np.asarray(yt, dtype=float)
        for seed in args.seeds:
            est = LMRegressor(max_time=args.max_time, n_members=n_members, n_threads=args.threads,
                              random_state=seed)
            t = time.perf_counter()
            est.fit(X, y)
            fit_s = time.perf_counter() - t
            rec = {"dataset": ds, "seed": seed, "max_time": args.max_time, "threads": args.threads,
                   "n_members": args.members, "auto_margin": lmreg.members.AUTO_MARGIN, "fit_s": fit_s, "members": len(est.members_),
                   "member_seconds": [r.seconds for r in est.member_results_],
                   "member_stopped": [r.stopped for r in est.member_results_],
                   # steps and best step: seconds alone mix a slower step (shared cores) with more steps
                   "member_steps": [r.steps for r in est.member_results_],
                   "member_best_step": [r.best_step for r in est.member_results_],
                   "member_val_mae": [r.best_val_mae for r in est.member_results_],
                   "ensemble": _scores(est, Xt, yt)}
            members = est.members_
            est.members_ = members[:1]
            est.calibrate(X, y)  # the first network's own calibration, as in a single fit
            rec["first"] = _scores(est, Xt, yt)
            est.members_ = members
            records.append(rec)
            print(report([rec]), flush=True)
            if args.out:  # after every fit: a long run leaves what it measured
                with open(args.out, "w") as f:
                    json.dump(records, f)
    return records


def report(records: list) -> str:
    """One line per fit: members, test MAE of the first network and of the ensemble, coverage.

    Examples
    --------
    >>> s = {"mae": 2.0, "crps": 1.0, "coverage80": 0.8}
    >>> e = {"mae": 1.5, "crps": 0.9, "coverage80": 0.78}
    >>> print(report([{"dataset": "d", "seed": 0, "members": 3, "fit_s": 10.0, "first": s, "ensemble": e}]))
    d seed 0: 3 members in 10 s; MAE 2 -> 1.5 (-25.0%), CRPS 1 -> 0.9 (-10.0%), cov80 0.80 -> 0.78
    """
    lines = []
    for r in records:
        f, e = r["first"], r["ensemble"]
        lines.append(f"{r['dataset']} seed {r['seed']}: {r['members']} members in {r['fit_s']:.0f} s; "
                     f"MAE {f['mae']:.4g} -> {e['mae']:.4g} ({e['mae'] / f['mae'] - 1:+.1%}), "
                     f"CRPS {f['crps']:.4g} -> {e['crps']:.4g} ({e['crps'] / f['crps'] - 1:+.1%}), "
                     f"cov80 {f['coverage80']:.2f} -> {e['coverage80']:.2f}")
    return "\n".join(lines)


def table(records: list) -> str:
    """Markdown: one row per dataset and budget, every fit's MAE change, the means of both arms.

    Examples
    --------
    >>> f = {"mae": 2.0, "crps": 1.0, "coverage80": 0.8, "coverage80_raw": 0.7, "r2": 0.5}
    >>> e = {"mae": 1.5, "crps": 0.9, "coverage80": 0.7, "coverage80_raw": 0.8, "r2": 0.6}
    >>> print(table([{"dataset": "d", "seed": 0, "max_time": 300.0, "members": 3, "first": f, "ensemble": e}]))
    | dataset | max_time | fits (with >1 member) | members | test MAE change per fit | mean MAE: first -> ensemble | R² | CRPS | cov80 calibrated | cov80 raw |
    |---|---:|---:|---|---|---|---|---|---|---|
    | d | 300 | 1 (1) | 3 | -25.0% | 2 -> 1.5 (-25.0%) | 0.500 -> 0.600 | 1 -> 0.9 | 0.80 -> 0.70 | 0.70 -> 0.80 |
    """
    groups: dict = {}
    for r in records:
        groups.setdefault((r["dataset"], r["max_time"]), []).append(r)
    lines = ["| dataset | max_time | fits (with >1 member) | members | test MAE change per fit | "
             "mean MAE: first -> ensemble | R² | CRPS | cov80 calibrated | cov80 raw |",
             "|---|---:|---:|---|---|---|---|---|---|---|"]
    for (ds, budget), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])

        def mean(arm, key):
            return float(np.mean([r[arm][key] for r in rs]))

        first, ens = mean("first", "mae"), mean("ensemble", "mae")
        changes = ", ".join(f"{r['ensemble']['mae'] / r['first']['mae'] - 1:+.1%}" for r in rs)
        lines.append(
            f"| {ds} | {budget:.0f} | {len(rs)} ({sum(r['members'] > 1 for r in rs)}) | "
            f"{', '.join(str(r['members']) for r in rs)} | {changes} | "
            f"{first:.4g} -> {ens:.4g} ({ens / first - 1:+.1%}) | "
            f"{mean('first', 'r2'):.3f} -> {mean('ensemble', 'r2'):.3f} | "
            f"{mean('first', 'crps'):.4g} -> {mean('ensemble', 'crps'):.4g} | "
            f"{mean('first', 'coverage80'):.2f} -> {mean('ensemble', 'coverage80'):.2f} | "
            f"{mean('first', 'coverage80_raw'):.2f} -> {mean('ensemble', 'coverage80_raw'):.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--report", nargs="+", metavar="JSON", help="print earlier runs and exit")
    p.add_argument("--table", nargs="+", metavar="JSON", help="print the markdown table of earlier runs and exit")
    p.add_argument("--datasets", nargs="+", default=["diabetes"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--members", default="auto", help='"auto" or a count')
    p.add_argument("--max-time", type=float, default=300.0)
    p.add_argument("--auto-margin", type=float, help="lmreg.members.AUTO_MARGIN for this run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.table:
        print(table([r for path in args.table for r in json.load(open(path))]))
        return 0
    if args.report:
        for path in args.report:
            print(report(json.load(open(path))))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
