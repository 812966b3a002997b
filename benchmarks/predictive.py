"""Decision rule and quantile calibration on the bundled suite, on one model per dataset.

Each dataset's SFT model comes from ``--cache`` (the same cache as ``rl_paired.py``:
fitted once with ``max_time = --sft-time``, no RL, and saved), else it is fitted and
saved there.

**Point predictions** (records with ``"part": "decision"``): the test MAE and the
decoding seconds of the median of ``n_samples`` (16) samples, of the median of
``--many`` samples (the first 16 of which are the 16 above), and of the exact median
found on the token tree (``quantile_decoding="tree"``, the default).

**Quantiles** (``"part": "quantiles"``): the test rows are sampled once; the arms
differ only in how those samples become quantiles:

* **raw**: the sample quantiles (``calibration=None``);
* **conformal**: what ``predict_quantiles`` returns by default, additive CQR shifts
  fitted on (at most 512) validation rows (:mod:`lmreg.calibration`);
* **normalised**: the same with each row's scores divided by its 10%-90% sample range
  (floored at 1% of the validation targets' IQR), the variant that was not shipped;
* **conformal, per call**: the same shifts as **conformal**, with crossings repaired by
  a running maximum over the levels of the call only (the repair before the median-out
  repair on a fixed grid of levels).

For the conformal arms the 80% interval is also scored as one call for the levels 0.1
and 0.9 alone (``*_alone`` fields), which is how a user asks for it.

Metrics per arm: coverage of the 80% interval, its mean width, the interval score
(Gneiting & Raftery 2007: width plus ``2 / 0.2`` times the miss), and the mean pinball
loss over the levels 0.05 ... 0.95 (lower is better for the last three).

Usage::

    python benchmarks/predictive.py --cache benchmarks/results/rlp/sft_cache --sft-time 150 \\
        --out benchmarks/results/predictive.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import mean_pinball_loss

from lmreg import LMRegressor, load, load_dataset
from lmreg.bench import RELIABILITY_LEVELS, environment
from lmreg.calibration import ConformalQuantiles, calibrated_order_statistic
from lmreg.datasets import list_datasets
from lmreg.metrics import interval_coverage

LEVELS = list(RELIABILITY_LEVELS)


class NormalisedConformal(ConformalQuantiles):
    """Scores scaled by each row's sample spread (normalised conformal scores)."""

    def fit(self, samples, y):
        super().fit(samples, y)
        self.floor_ = max(0.01 * float(np.subtract(*np.quantile(self.y_, [0.75, 0.25]))), 1e-12)
        return self

    def _spread(self, samples):
        lo, hi = np.quantile(samples, [0.1, 0.9], axis=1)
        return np.maximum(hi - lo, self.floor_)

    def quantiles(self, samples, levels):
        samples = np.asarray(samples, dtype=np.float64)
        ref = self.samples_.astype(np.float64)
        q_ref, spread_ref = np.quantile(ref, levels, axis=1), self._spread(ref)
        shifts = np.array([calibrated_order_statistic((self.y_ - q_ref[j]) / spread_ref, tau)
                           for j, tau in enumerate(levels)])
        out = np.quantile(samples, levels, axis=1).T + shifts[None] * self._spread(samples)[:, None]
        return np.maximum.accumulate(out, axis=1)   # levels are sorted here


class PerCallRepair(ConformalQuantiles):
    """Crossings repaired by a running maximum over the levels of one call only."""

    def quantiles(self, samples, levels):
        levels = np.asarray(levels, dtype=float).ravel()
        out = np.moveaxis(np.quantile(np.asarray(samples, np.float64), levels, axis=1), 0, 1) + self.shifts(levels)
        order = np.argsort(levels, kind="stable")
        out[:, order] = np.maximum.accumulate(out[:, order], axis=1)
        return out


def interval_alone(cal, samples, y) -> dict:
    """The 80% interval asked for as the levels 0.1 and 0.9 alone."""
    lo, hi = cal.quantiles(samples, [0.1, 0.9]).T
    miss = np.maximum(lo - y, 0) + np.maximum(y - hi, 0)
    return {"coverage80_alone": interval_coverage(y, lo, hi), "width80_alone": float(np.mean(hi - lo)),
            "interval_score80_alone": float(np.mean(hi - lo + miss / 0.1))}


def metrics(y, q) -> dict:
    """``q``: (n_rows, len(LEVELS)) quantiles at the sorted ``LEVELS``."""
    lo, hi = q[:, LEVELS.index(0.1)], q[:, LEVELS.index(0.9)]
    miss = np.maximum(lo - y, 0) + np.maximum(y - hi, 0)
    return {"coverage80": interval_coverage(y, lo, hi), "width80": float(np.mean(hi - lo)),
            "interval_score80": float(np.mean(hi - lo + miss / 0.1)),
            "pinball": float(np.mean([mean_pinball_loss(y, q[:, j], alpha=a) for j, a in enumerate(LEVELS)]))}


def sft_model(ds, X, y, args) -> LMRegressor:
    path = Path(args.cache) / f"{ds}_t{args.sft_time:g}_s{args.seed}"
    if path.exists():
        return load(path)
    est = LMRegressor(max_time=args.sft_time, random_state=args.seed, n_threads=args.threads,
                      n_members=1).fit(X, y)
    est.save(path)
    return est


def decision_records(est, Xt, yt, many: int):
    """MAE and seconds of three ways to the median (the sampled ones share their first
    draws), and the ``n_samples`` samples per row."""
    t = time.perf_counter()
    samples = est.sample(Xt, many)
    many_s = time.perf_counter() - t
    t = time.perf_counter()
    samples16 = est.sample(Xt)
    s16 = time.perf_counter() - t
    t = time.perf_counter()
    tree = est.set_params(decision="median", quantile_decoding="tree").predict(Xt)
    tree_s = time.perf_counter() - t
    mae = lambda pred: float(np.mean(np.abs(pred - yt)))   # noqa: E731
    return [{"arm": f"median of {est.n_samples} samples", "mae": mae(np.median(samples[:, :est.n_samples], 1)),
             "seconds": s16},
            {"arm": f"median of {many} samples", "mae": mae(np.median(samples, 1)), "seconds": many_s},
            {"arm": "tree median", "mae": mae(tree), "seconds": tree_s}], samples16


def decision_table(records) -> str:
    arms = list(dict.fromkeys(r["arm"] for r in records))
    lines = ["| dataset | " + " | ".join(f"{a}: MAE (s)" for a in arms) + " | tree vs 16 |",
             "|---|" + "---:|" * (len(arms) + 1)]
    by = {(r["dataset"], r["arm"]): r for r in records}
    for d in dict.fromkeys(r["dataset"] for r in records):
        cells = [f"{by[d, a]['mae']:.4g} ({by[d, a]['seconds']:.1f})" for a in arms]
        ratio = by[d, arms[-1]]["mae"] / by[d, arms[0]]["mae"] - 1
        lines.append("| " + " | ".join([d] + cells + [f"{100 * ratio:+.1f}%"]) + " |")
    return "\n".join(lines)


def table(records) -> str:
    arms = list(dict.fromkeys(r["arm"] for r in records))
    head = "| dataset | " + " | ".join(f"{a} cov80 / IS80 / pinball" for a in arms) + " |"
    lines = [head, "|---|" + "---|" * len(arms)]
    by = {(r["dataset"], r["arm"]): r for r in records}
    for d in dict.fromkeys(r["dataset"] for r in records):
        cells = [f"{by[d, a]['coverage80']:.3f} / {by[d, a]['interval_score80']:.4g} / {by[d, a]['pinball']:.4g}"
                 for a in arms]
        lines.append("| " + " | ".join([d] + cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", nargs="+", default=None, metavar="JSON", help="print the table of earlier runs")
    p.add_argument("--datasets", nargs="*", default=None)
    p.add_argument("--sft-time", type=float, default=150.0)
    p.add_argument("--cache", default="benchmarks/results/sft_cache")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--many", type=int, default=256, help="samples of the many-sample median")
    p.add_argument("--out", default="benchmarks/results/predictive.json")
    p.add_argument("--quantiles-only", action="store_true", help="skip the point predictions' records")
    args = p.parse_args(argv)
    if args.table:
        records = [r for path in args.table for r in json.load(open(path))]
        print(decision_table([r for r in records if r["part"] == "decision"]) + "\n")
        print(table([r for r in records if r["part"] == "quantiles"]))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    env, records = environment(args.threads), []
    for ds in args.datasets or list_datasets():
        X, y = load_dataset(ds, "train")
        Xt, yt = load_dataset(ds, "test")
        est = sft_model(ds, X, y, args)
        if args.quantiles_only:
            decisions, samples = [], est.sample(Xt)
        else:
            decisions, samples = decision_records(est, Xt, np.asarray(yt, float), args.many)
        for rec in decisions:
            records.append({"dataset": ds, "part": "decision", **rec, "env": env})
            print(f"{ds:20s} {rec['arm']:24s} MAE {rec['mae']:.4g}  {rec['seconds']:.1f} s", flush=True)
        t = time.perf_counter()
        est.set_params(calibration="conformal").calibrate(X, y)
        calibrate_s = time.perf_counter() - t
        cal = est.calibrator_
        per_call = PerCallRepair().fit(cal.samples_, cal.y_, cal.weights_)
        arms = {"raw": np.quantile(samples, LEVELS, axis=1).T,
                "conformal": cal.quantiles(samples, LEVELS),
                "normalised": NormalisedConformal().fit(cal.samples_, cal.y_).quantiles(samples, LEVELS),
                "conformal, per call": per_call.quantiles(samples, LEVELS)}
        alone = {"conformal": cal, "conformal, per call": per_call}
        for arm, q in arms.items():
            extra = interval_alone(alone[arm], samples, np.asarray(yt, float)) if arm in alone else {}
            records.append({"dataset": ds, "part": "quantiles", "arm": arm, **metrics(np.asarray(yt, float), q),
                            **extra, "calibration_rows": len(cal.y_), "calibrate_s": calibrate_s, "env": env})
            print(f"{ds:20s} {arm:10s} " + "  ".join(f"{k} {v:.4g}" for k, v in records[-1].items()
                                                      if isinstance(v, float)), flush=True)
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:   # after every dataset
            json.dump(records, f, indent=1)
    return main(["--table", args.out])


if __name__ == "__main__":
    raise SystemExit(main())
