"""Where an RL stage's gain lies: per-row errors of an SFT model and of its RL weights.

Loads a cached SFT model of ``rl_paired.py`` (``--cache``, ``--sft-time``, ``--seed``),
records the signed errors of ``predict`` on its validation rows (the rows the keep
check judges) and on the test split, runs the RL stage with the weights kept on any
lower validation error (``keep_alpha=None``), and records them again. ``--report``
prints, per file and split: MAE before -> after, the share of rows that got better,
and how much of the MAE gain comes from the 1% of rows with the largest change.

Usage::

    python benchmarks/rl_rows.py --dataset ames_housing --seed 3 --rl-time 150 \\
        --cache benchmarks/results/rlp/sft_cache --out benchmarks/results/rlp/rows/ames_housing_s3.json
    python benchmarks/rl_rows.py --report benchmarks/results/rlp/rows/*.json
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np


def run(args) -> dict:
    import torch

    from lmreg import load, load_dataset
    from rl_paired import RL_DEFAULTS, cache_path   # the same cache and RL defaults as the paired runs

    torch.set_num_threads(args.threads)
    X, y = load_dataset(args.dataset, "train")
    Xt, yt = load_dataset(args.dataset, "test")
    y, yt = np.asarray(y, float), np.asarray(yt, float)
    est = load(cache_path(args.dataset, args))
    _, val = est._split(len(y))   # the same split reinforce uses
    Xv = X.iloc[val] if hasattr(X, "iloc") else [X[i] for i in val]
    out = {"dataset": args.dataset, "seed": args.seed, "yv": y[val].tolist(), "yt": yt.tolist(),
           "val_sft": (est.predict(Xv) - y[val]).tolist(), "test_sft": (est.predict(Xt) - yt).tolist()}
    # today's RL defaults (the cached model carries those it was saved with), kept on any lower error
    est.set_params(**{**RL_DEFAULTS, "rl_steps": 10**6, "rl_config": {"keep_alpha": None}}, n_threads=args.threads)
    est.reinforce(X, y, max_time=args.rl_time)
    out.update(val_rl=(est.predict(Xv) - y[val]).tolist(), test_rl=(est.predict(Xt) - yt).tolist(),
               kept=bool(est.rl_result_.kept), steps=est.rl_result_.steps)
    return out


def report(rec: dict) -> list[str]:
    lines = []
    for part in ("val", "test"):
        before, after = np.abs(rec[f"{part}_sft"]), np.abs(rec[f"{part}_rl"])
        change = after - before
        top = np.sort(change)[:max(1, len(change) // 100)]   # the rows that gained most
        gain = -change.mean()
        lines.append(f"{part:4s} rows {len(before):5d}  MAE {before.mean():.4g} -> {after.mean():.4g} "
                     f"({100 * (after.mean() / before.mean() - 1):+.1f}%)  better {np.mean(change < 0):.2f}  "
                     f"gain from the top 1% rows {f'{-top.sum() / len(change) / gain:.0%}' if gain > 0 else '-'}  "
                     f"largest error {before.max():.4g} -> {after.max():.4g}")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--report", nargs="+", default=None, metavar="JSON")
    p.add_argument("--dataset", default="ames_housing")
    p.add_argument("--sft-time", type=float, default=150.0)
    p.add_argument("--rl-time", type=float, default=150.0)
    p.add_argument("--cache", default="benchmarks/results/rlp/sft_cache")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/rl_rows.json")
    args = p.parse_args(argv)
    if args.report:
        for path in args.report:
            with open(path) as f:
                rec = json.load(f)
            print(f"{path}: kept {rec['kept']}, {rec['steps']} steps")
            print("\n".join("  " + line for line in report(rec)))
        return 0
    rec = run(args)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(rec, f)
    print("\n".join(report(rec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
