"""RL against the very SFT model it starts from: paired arms on the bundled suite.

``rl_arms.sh`` trains a new SFT model for every arm; the learning-rate schedule
follows the clock, so two fits with the same budget differ by a few percent and
hide RL effects of that size. Here each dataset's SFT model is fitted once
(``max_time = --sft-time``, no RL), saved under ``--cache`` and scored; every arm
then loads that same model and runs only the RL stage on it
(:meth:`lmreg.LMRegressor.reinforce`, ``max_time = --rl-time``). The difference
between an arm and the ``sft`` row is RL and nothing else.

Each arm is ``NAME=JSON`` of estimator parameters (``rl_reward``, ``rl_variant``,
``rl_config``) on top of the estimator's current RL defaults (not those the cached model
was saved with); ``rl_steps`` defaults to "until the RL time is up". The records
(one per dataset x arm, ``sft`` included) hold the test MAE, RMSE, R^2, Spearman,
CRPS, 80% coverage, RL steps, whether the RL weights were kept, and the
validation error / CRPS before and after RL (what the keep-or-revert check saw,
also when the weights were reverted).

Usage (``--table FILE ... [--by-arm]`` prints the markdown table of earlier runs,
``--summary FILE ...`` what all the RL runs in them did per dataset)::

    python benchmarks/rl_paired.py --datasets tweets_engagement diabetes --sft-time 150 \\
        --rl-time 50 --cache benchmarks/results/sft_cache --out results/rl_paired.json \\
        --arm 'abs={"rl_reward": "abs"}' --arm 'crps={"rl_reward": "crps_loo"}'
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from lmreg import LMRegressor, load, load_dataset
from lmreg.bench import _point_metrics, environment
from lmreg.datasets import list_datasets
from lmreg.metrics import crps, interval_coverage


#: The estimator's RL parameters as they default now; every arm starts from them.
RL_DEFAULTS = {k: v for k, v in LMRegressor().get_params().items() if k.startswith("rl_")}


def score(est, Xt, yt) -> dict:
    """Test metrics: ``predict``'s point error, and CRPS and coverage from one set of samples.

    ``coverage80``: the 80% interval of ``predict_quantiles`` (conformally calibrated
    when the estimator has a ``calibrator_``); ``coverage80_raw``: the 10%-90% range
    of the samples. Records written before calibration existed hold the raw one
    under ``coverage80``.
    """
    q, samples = est.predict_quantiles(Xt, [0.1, 0.9], return_samples=True)
    pred = est.predict(Xt)   # the decision rule as shipped (the exact median on the token tree)
    raw = np.quantile(samples, [0.1, 0.9], axis=1).T
    return {**_point_metrics(yt, pred), "crps": crps(yt, samples),
            "coverage80": interval_coverage(yt, q[:, 0], q[:, 1]),
            "coverage80_raw": interval_coverage(yt, raw[:, 0], raw[:, 1])}


def n_members(args):
    """``--members`` as ``n_members``; callers with their own arguments (rl_weights.py) have none: 1."""
    members = str(getattr(args, "members", "1"))
    return members if members == "auto" else int(members)


def device(args) -> str:
    """``--device``; callers with their own arguments (rl_weights.py) have none: the CPU."""
    return getattr(args, "device", "cpu")


def cache_path(ds, args) -> Path:
    members = "" if n_members(args) == 1 else f"_m{n_members(args)}"
    return Path(args.cache) / f"{ds}_t{args.sft_time:g}_s{args.seed}{members}"


def sft_model(ds, X, y, args) -> tuple[LMRegressor, float]:
    """The dataset's SFT model: loaded from the cache, else fitted and saved there."""
    path = cache_path(ds, args)
    if path.exists():
        return load(path, device=device(args)), float("nan")
    # one network by default; with --members every member gets its RL stage, judged on the ensemble
    est = LMRegressor(max_time=args.sft_time, random_state=args.seed, n_threads=args.threads,
                      n_members=n_members(args), device=device(args))
    t = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - t
    est.save(path)
    return est, fit_s


def _cell(r) -> str:
    if r is None:
        return "-"
    kept = "kept" if r["kept"] else "reverted"
    return (f"{100 * r['d_mae']:+.1f}% / {100 * r['d_cov80']:+.1f} / {100 * r['d_crps']:+.1f}% "
            f"({r['rl_steps']}, {kept})")


def table(records, by_arm=False) -> str:
    """Markdown, cells ``ΔMAE / Δcov80 / ΔCRPS (steps, kept)`` against the sft row.

    One row per dataset (the sft MAE and coverage, then a column per arm), or with
    ``by_arm`` one row per arm and a column per dataset. Records of several SFT
    seeds (their ``seed`` field) get a row per dataset and seed, each against its
    own SFT model, and a ``seed`` column.

    Examples
    --------
    >>> def rec(seed, arm, d_mae=0.0):
    ...     return {"dataset": "d", "seed": seed, "arm": arm, "mae": 1.0, "coverage80": 0.8,
    ...             "d_mae": d_mae, "d_cov80": 0.0, "d_crps": 0.0, "rl_steps": 5, "kept": True}
    >>> print(table([rec(0, "sft"), rec(0, "a", -0.1), rec(1, "sft"), rec(1, "a", 0.02)]))
    | dataset | seed | sft MAE | sft cov80 | a |
    |---|---:|---:|---:|---|
    | d | 0 | 1 | 0.80 | -10.0% / +0.0 / +0.0% (5, kept) |
    | d | 1 | 1 | 0.80 | +2.0% / +0.0 / +0.0% (5, kept) |
    """
    arms = list(dict.fromkeys(r["arm"] for r in records if r["arm"] != "sft"))
    by = {(r["dataset"], r.get("seed"), r["arm"]): r for r in records}
    rows = [(d, s) for d, s in dict.fromkeys((r["dataset"], r.get("seed")) for r in records)
            if (d, s, "sft") in by]
    seeds = len({s for _, s in rows}) > 1
    if by_arm:
        names = [f"{d} (seed {s})" if seeds else d for d, s in rows]
        lines = ["| arm | " + " | ".join(names) + " |", "|---|" + "---|" * len(rows)]
        lines += ["| " + " | ".join([a] + [_cell(by.get((d, s, a))) for d, s in rows]) + " |" for a in arms]
        return "\n".join(lines)
    lines = ["| " + " | ".join(["dataset"] + ["seed"] * seeds + ["sft MAE", "sft cov80"] + arms) + " |",
             "|---|" + "---:|" * seeds + "---:|---:|" + "---|" * len(arms)]
    for d, s in rows:
        base = by[d, s, "sft"]
        cells = ([d] + [str(s)] * seeds + [f"{base['mae']:.4g}", f"{base['coverage80']:.2f}"]
                 + [_cell(by.get((d, s, a))) for a in arms])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(records, target=-0.05, max_cov_loss=0.05) -> str:
    """Markdown, one row per dataset over every RL run in ``records`` (any arm, any file).

    Counts the runs, those the stage kept, and those at the issue's target (test MAE
    ``target`` or lower with the 80% coverage at most ``max_cov_loss`` lower), and gives
    the best kept test ΔMAE with its arm. Controls with the policy-gradient term off
    (``pg_coef=0``) are not RL runs and are left out.
    """
    runs = [r for r in records if r["arm"] != "sft" and "d_mae" in r
            and ((r.get("params") or {}).get("rl_config") or {}).get("pg_coef", 1.0) != 0]
    lines = ["| dataset | RL runs | kept | at the target | best kept ΔMAE (arm) |", "|---|---:|---:|---:|---|"]
    for d in dict.fromkeys(r["dataset"] for r in runs):
        mine = [r for r in runs if r["dataset"] == d]
        kept = [r for r in mine if r["kept"]]
        hit = [r for r in kept if r["d_mae"] <= target and r["d_cov80"] >= -max_cov_loss]
        best = min(kept, key=lambda r: r["d_mae"], default=None)
        cell = "-" if best is None else f"{100 * best['d_mae']:+.1f}% ({best['arm']})"
        lines.append(f"| {d} | {len(mine)} | {len(kept)} | {len(hit)} | {cell} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", nargs="+", default=None, metavar="JSON",
                   help="print the markdown table of earlier runs (files are merged) and exit")
    p.add_argument("--by-arm", action="store_true", help="with --table: one row per arm")
    p.add_argument("--summary", nargs="+", default=None, metavar="JSON",
                   help="print, per dataset, how many RL runs in these files kept RL and met the target, and exit")
    p.add_argument("--datasets", nargs="*", default=None)
    p.add_argument("--sft-time", type=float, default=150.0)
    p.add_argument("--rl-time", type=float, default=50.0)
    p.add_argument("--arm", action="append", default=[], help="NAME=JSON estimator parameters")
    p.add_argument("--cache", default="benchmarks/results/sft_cache")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (CUDA when available)")
    p.add_argument("--n-samples", type=int, default=None,
                   help="samples per row for scoring and the RL checks (default: the model's, 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--members", default="1", help="n_members of the SFT fits: an integer or auto")
    p.add_argument("--out", default="benchmarks/results/rl_paired.json")
    args = p.parse_args(argv)
    if args.table or args.summary:
        records = []
        for path in args.table or args.summary:
            with open(path) as f:
                records += json.load(f)
        print(table(records, by_arm=args.by_arm) if args.table else summary(records))
        return 0
    arms = {}
    for item in args.arm:
        name, _, params = item.partition("=")
        arms[name] = {"rl_steps": 1_000_000, **json.loads(params)}
    import torch

    torch.set_num_threads(args.threads)
    env = environment(args.threads)
    records = []

    def emit(rec):
        records.append(rec)
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(f"{args.out}.tmp", "w") as f:
            json.dump(records, f, indent=1)
        os.replace(f"{args.out}.tmp", args.out)

    for ds in args.datasets or list_datasets():
        X, y = load_dataset(ds, "train")
        Xt, yt = load_dataset(ds, "test")
        est, fit_s = sft_model(ds, X, y, args)
        if args.n_samples:
            est.set_params(n_samples=args.n_samples)
        est.calibrate(X, y)  # what fit does (the cached models may predate calibration)
        base = score(est, Xt, yt)
        emit({"dataset": ds, "arm": "sft", "seed": args.seed, **base, "sft_time": args.sft_time, "fit_s": fit_s,
              "n_samples": est.n_samples, "members": len(est.members_),
              "sft_steps": est.fit_result_.steps, "fallback": bool(est.fallback_), "env": env})
        print(f"{ds:20s} sft       MAE {base['mae']:.4g}  cov80 {base['coverage80']:.2f} "
              f"(raw {base['coverage80_raw']:.2f})  "
              f"CRPS {base['crps']:.4g}", flush=True)
        for name, params in arms.items():
            est = load(cache_path(ds, args), device=args.device)
            # The cached model carries the RL parameters it was saved with: start from today's defaults.
            est.set_params(**{**RL_DEFAULTS, "n_threads": args.threads, **params})
            if args.n_samples:
                est.set_params(n_samples=args.n_samples)
            t = time.perf_counter()
            est.reinforce(X, y, max_time=args.rl_time)
            rl_s = time.perf_counter() - t
            res = score(est, Xt, yt)
            r = est.rl_result_
            rec = {"dataset": ds, "arm": name, "seed": args.seed, "params": params, **res,
                   "rl_time": args.rl_time, "rl_s": rl_s,
                   "rl_steps": r.steps, "kept": r.kept, "val_before": r.val_before, "val_after": r.val_after,
                   "checks": r.checks, "best_step": r.best_step, "members": len(est.members_),
                   "members_kept": sum(m.kept for m in est.member_rl_results_),
                   "d_mae": res["mae"] / base["mae"] - 1, "d_cov80": res["coverage80"] - base["coverage80"],
                   "d_cov80_raw": res["coverage80_raw"] - base["coverage80_raw"],
                   "d_crps": res["crps"] / base["crps"] - 1, "env": env}
            emit(rec)
            vb, va = r.val_before.get("error", np.nan), r.val_after.get("error", np.nan)
            print(f"{ds:20s} {name:9s} MAE {res['mae']:.4g} ({100 * rec['d_mae']:+.1f}%)  "
                  f"cov80 {res['coverage80']:.2f} ({100 * rec['d_cov80']:+.1f}; raw {100 * rec['d_cov80_raw']:+.1f})  "
                  f"CRPS {100 * rec['d_crps']:+.1f}%  "
                  f"steps {r.steps}  kept {r.kept}  val {vb:.4g}->{va:.4g}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
